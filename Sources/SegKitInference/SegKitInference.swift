@_exported import SegKitData
@_exported import SegKitMetrics
@_exported import SegKitModels
