import ArgumentParser

/// How the executable reports what ArgumentParser leaves to it: every failure is one `pullback: error: ...` line,
/// whether the command printed it or ArgumentParser made it (`Error: ...` followed by usage), and `help` of a command
/// that does not exist is such a failure rather than the main help.
public enum ArgumentFailure {
    /// The line to print for `error` thrown by parsing or by a command, or nil when there is nothing to print (the
    /// command printed its error already and threw an exit code). Help and version text is not a failure: see
    /// `Pullback.exitCode(for:)`.
    public static func line(for error: any Error) -> String? {
        let message = Pullback.fullMessage(for: error)
        guard !message.isEmpty else { return nil }
        let lines = message.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        var first = lines.first ?? message
        if first.hasPrefix("Error: ") { first.removeFirst("Error: ".count) }
        // ArgumentParser ends with "See 'pullback backup --help' for more information.": kept as a short hint.
        let hint = lines.lazy.compactMap { line -> String? in
            guard let start = line.range(of: "See '"),
                let end = line.range(of: "' for more", range: start.upperBound..<line.endIndex)
            else { return nil }
            return "see '" + line[start.upperBound..<end.lowerBound] + "'"
        }.first
        // Arguments are quoted raw in ArgumentParser's messages: escaped, so that one cannot drive the terminal.
        return "pullback: error: " + Terminal.escaped(lowercasingFirstWord(first) + (hint.map { "; " + $0 } ?? ""))
    }

    /// The error line for `pullback help NAME...` when NAME is no command (ArgumentParser would print the main
    /// help and exit 0), or nil when `arguments` (without the executable) are not that.
    public static func unknownHelpTopic(in arguments: [String]) -> String? {
        guard arguments.first == "help" else { return nil }
        var commands = Pullback.configuration.subcommands
        var path = "pullback"
        for name in arguments.dropFirst() where !name.hasPrefix("-") {
            var found: ParsableCommand.Type?
            for command in commands where names(of: command).contains(name) { found = command }
            guard let found else {
                let known = commands.map { names(of: $0)[0] }.joined(separator: ", ")
                return "pullback: error: "
                    + Terminal.escaped("\(path) has no command \(name); its commands are: \(known)")
            }
            commands = found.configuration.subcommands
            path += " " + name
        }
        return nil
    }

    /// The name `command` is called by, then its aliases.
    private static func names(of command: ParsableCommand.Type) -> [String] {
        let configuration = command.configuration
        return [configuration.commandName ?? command._commandName] + configuration.aliases
    }

    /// "Unknown option" as "unknown option": the line goes on after `error: `. A word in capitals stays.
    private static func lowercasingFirstWord(_ text: String) -> String {
        let characters = Array(text.prefix(2))
        guard characters.count == 2, characters[0].isUppercase, characters[1].isLowercase else { return text }
        return characters[0].lowercased() + text.dropFirst()
    }
}
