@_exported import SegKitTensor
