@_exported import SegKitInference
