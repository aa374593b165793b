import Foundation
import Hummingbird

/// The page: one HTML file, its script and its style, from the Page folder the build
/// copies beside the binary (no Node build; edit the files and rebuild).
extension SegmentationService {
  static let pageFiles: [String: (file: String, type: String)] = [
    "/": ("index.html", "text/html; charset=utf-8"),
    "/page.js": ("page.js", "text/javascript; charset=utf-8"),
    "/page.css": ("page.css", "text/css; charset=utf-8"),
  ]

  func addPageRoutes(to router: Router<BasicRequestContext>) {
    for (path, page) in Self.pageFiles {
      router.get(RouterPath(stringLiteral: path)) { _, _ -> Response in
        guard let url = Bundle.module.url(forResource: page.file, withExtension: nil, subdirectory: "Page"),
              let data = try? Data(contentsOf: url)
        else { throw ServiceError(.internalServerError, "the page's \(page.file) is missing from the installation") }
        return Response(status: .ok, headers: [.contentType: page.type, .cacheControl: "no-cache"],
                        body: .init(byteBuffer: ByteBuffer(data: data)))
      }
    }
  }
}
