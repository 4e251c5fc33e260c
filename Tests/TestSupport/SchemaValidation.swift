import Foundation
import XCTest

/// Validates JSON documents against the schemas in `schemas/` with Python's jsonschema
/// (installed by scripts/setup), the validator the schemas are written for.
public enum SchemaValidation {
    /// Fails the test unless every document (one JSON text each) matches `schema`.
    public static func validate(_ documents: [String], schema: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let folder = TemporaryDirectory("schema")
        let script = folder.write("validate.py", """
        import json, sys, jsonschema
        schema = json.load(open(sys.argv[1]))
        for n, text in enumerate(open(sys.argv[2]).read().splitlines()):
            jsonschema.validate(json.loads(text), schema)
        print("valid")
        """)
        let data = folder.write("documents.jsonl", documents.joined(separator: "\n") + "\n")
        let result = try runProcess("/usr/bin/python3", [script, Repository.path("schemas/" + schema), data])
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
    }
}
