import Foundation
import SegKitTensor

extension ONNXGraphWriter {
  static func tensorProto(_ tensor: Tensor, name: String) throws -> Onnx_TensorProto {
    var proto = Onnx_TensorProto()
    proto.name = name
    proto.dims = tensor.shape.map(Int64.init)
    proto.dataType = try elementType(tensor.dtype)
    proto.rawData = try tensor.to(.cpu).contiguous().data()
    return proto
  }

  static func elementType(_ dtype: DType) throws -> Int32 {
    switch dtype {
    case .float32: return 1
    case .uint8: return 2
    case .int8: return 3
    case .int16: return 5
    case .int32: return 6
    case .int64: return 7
    case .bool: return 9
    case .float16: return 10
    case .float64: return 11
    case .bfloat16: return 16
    }
  }

  static func valueInfo(_ name: String, _ tensor: Tensor) -> Onnx_ValueInfoProto {
    var info = Onnx_ValueInfoProto()
    info.name = name
    var type = Onnx_TypeProto.Tensor()
    type.elemType = (try? elementType(tensor.dtype)) ?? 0
    var shape = Onnx_TensorShapeProto()
    shape.dim = tensor.shape.map { size in
      var dim = Onnx_TensorShapeProto.Dimension()
      dim.dimValue = Int64(size)
      return dim
    }
    type.shape = shape
    var typeProto = Onnx_TypeProto()
    typeProto.tensorType = type
    info.type = typeProto
    return info
  }
}

extension OperationTrace.Binary {
  var onnx: String {
    switch self {
    case .add: return "Add"
    case .sub: return "Sub"
    case .mul: return "Mul"
    case .div: return "Div"
    }
  }
}

extension Size2 {
  var pair: [Int] { [height, width] }
}

extension Onnx_AttributeProto {
  static func int(_ name: String, _ value: Int) -> Onnx_AttributeProto {
    var attribute = Onnx_AttributeProto()
    attribute.name = name
    attribute.type = .int
    attribute.i = Int64(value)
    return attribute
  }

  static func ints(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
    var attribute = Onnx_AttributeProto()
    attribute.name = name
    attribute.type = .ints
    attribute.ints = values.map(Int64.init)
    return attribute
  }

  static func float(_ name: String, _ value: Double) -> Onnx_AttributeProto {
    var attribute = Onnx_AttributeProto()
    attribute.name = name
    attribute.type = .float
    attribute.f = Float(value)
    return attribute
  }

  static func string(_ name: String, _ value: String) -> Onnx_AttributeProto {
    var attribute = Onnx_AttributeProto()
    attribute.name = name
    attribute.type = .string
    attribute.s = Data(value.utf8)
    return attribute
  }
}
