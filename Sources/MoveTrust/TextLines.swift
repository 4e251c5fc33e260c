/// Python's `str.splitlines()`: the line boundaries Ganeti's file and header parsers use.
enum TextLines {
    static func split(_ text: String) -> [Substring] {
        var lines: [Substring] = []
        var start = text.startIndex
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if isBoundary(character) {
                lines.append(text[start..<index])
                index = text.index(after: index)
                start = index
            } else {
                index = text.index(after: index)
            }
        }
        if start < text.endIndex { lines.append(text[start..<text.endIndex]) }
        return lines
    }

    /// `\r\n` is a single Character in Swift, so it is one boundary, as in Python.
    private static func isBoundary(_ character: Character) -> Bool {
        switch character {
        case "\n", "\r", "\r\n", "\u{0B}", "\u{0C}", "\u{1C}", "\u{1D}", "\u{1E}", "\u{85}", "\u{2028}", "\u{2029}":
            return true
        default:
            return false
        }
    }

    /// Python's `str.strip()` with no argument.
    static func strip(_ text: Substring) -> Substring {
        let isSpace: (Character) -> Bool = { $0.isWhitespace || $0 == "\u{1C}" || $0 == "\u{1D}" || $0 == "\u{1E}" || $0 == "\u{1F}" }
        guard let first = text.firstIndex(where: { !isSpace($0) }),
              let last = text.lastIndex(where: { !isSpace($0) }) else { return text[text.endIndex...] }
        return text[first...last]
    }
}
