@_exported import SegKitNN
