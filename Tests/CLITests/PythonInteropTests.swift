import Foundation
import MoveTrust
import TestSupport
import XCTest

/// Signatures made by gnt-move verify with a few lines of Python's `hmac`/`hashlib`, as Ganeti
/// computes them, and the other way round.
final class PythonInteropTests: XCTestCase {
    let verifier = """
    import hmac, hashlib, re, sys
    key = open(sys.argv[1]).read().splitlines()
    key = [l for l in key if l][0].encode()
    text = open(sys.argv[2]).read()
    m = re.match(r"^X-Ganeti-Signature:\\s*([a-zA-Z0-9]+)/([a-zA-Z0-9]+)$", text.splitlines()[0].strip(), re.I)
    pem = text[text.index("-----BEGIN"):]
    want = hmac.new(key, m.group(1).encode() + pem.encode(), hashlib.sha1).hexdigest()
    sys.exit(0 if want == m.group(2).lower() else 1)
    """

    let signer = """
    import hmac, hashlib, sys
    key = [l for l in open(sys.argv[1]).read().splitlines() if l][0].encode()
    pem = open(sys.argv[2]).read()
    salt = "PythonSalt42"
    sys.stdout.write("X-Ganeti-Signature: %s/%s\\n\\n%s" % (salt, hmac.new(key, (salt + pem).encode(), hashlib.sha1).hexdigest(), pem))
    """

    func python() throws -> String {
        try XCTUnwrap(which("python3"), "python3 is installed by .ci/run")
    }

    func testGntMoveSignatureVerifiesInPython() throws {
        let folder = TemporaryDirectory("py")
        let secret = folder.file("cds")
        XCTAssertEqual(try gntMove("secret", "new", "--out", secret).status, 0)
        let created = try gntMove("x509", "create", "--secret", secret, "--dir", folder.file("crypto"))
        let signed = folder.write("signed", try XCTUnwrap(try JSONValue(parsing: created.stdout)["x509_ca"]?.stringValue))
        let script = folder.write("verify.py", verifier)
        XCTAssertEqual(try runProcess(try python(), [script, secret, signed]).status, 0)
        // The same check must fail with another key, or the test proves nothing.
        XCTAssertEqual(try runProcess(try python(), [script, Repository.path("certs/other-secret"), signed]).status, 1)
    }

    func testPythonSignatureVerifiesInGntMove() throws {
        let folder = TemporaryDirectory("py")
        let secret = folder.file("cds")
        XCTAssertEqual(try gntMove("secret", "new", "--out", secret).status, 0)
        let script = folder.write("sign.py", signer)
        let signed = try runProcess(try python(), [script, secret, Repository.path("certs/test-a.pem")])
        XCTAssertEqual(signed.status, 0, signed.stderr)
        let file = folder.write("signed", signed.stdout)
        let verified = try gntMove("x509", "verify", "--secret", secret, file)
        XCTAssertEqual(verified.status, 0, verified.stderr)
        XCTAssertEqual(try JSONValue(parsing: verified.stdout)["salt"]?.stringValue, "PythonSalt42")
        XCTAssertEqual(try gntMove("x509", "verify", "--secret", Repository.path("certs/other-secret"), file).status, 1)
    }
}
