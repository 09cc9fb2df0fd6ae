/// The settings of one profile in the AWS CLI's INI files (`~/.aws/credentials`, `~/.aws/config`).
///
/// The credentials file names sections `[NAME]`; the config file `[profile NAME]`, except `[default]`. Comments
/// start with `#` or `;`; indented lines continue a nested block (`s3 =` and its settings), which is skipped here.
struct AWSProfileFile: Sendable {
    /// Settings by lowercased key.
    private(set) var settings: [String: String] = [:]
    /// True when the file had a section for the profile.
    private(set) var found = false

    /// The profile `name`'s settings in the file's `text`; `isConfigFile` selects the `[profile NAME]` convention.
    init(text: String, profile name: String, isConfigFile: Bool) {
        var inProfile = false
        for rawLine in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            if rawLine.first == " " || rawLine.first == "\t" { continue }
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                inProfile = Self.section(line, namesProfile: name, isConfigFile: isConfigFile)
                found = found || inProfile
                continue
            }
            guard inProfile, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if !key.isEmpty, !value.isEmpty { settings[key] = value }
        }
    }

    private static func section(_ line: String, namesProfile name: String, isConfigFile: Bool) -> Bool {
        guard let close = line.firstIndex(of: "]") else { return false }
        let inner = line[line.index(after: line.startIndex)..<close].trimmingCharacters(in: .whitespaces)
        if !isConfigFile { return inner == name }
        if name == "default", inner == "default" { return true }
        let words = inner.split(separator: " ", omittingEmptySubsequences: true)
        return words.count == 2 && words[0] == "profile" && words[1] == name
    }
}

/// A profile's settings from both files: the credentials file wins over the config file, as in the AWS CLI.
struct AWSProfile: Sendable {
    /// The profile's name.
    var name: String
    /// Settings from `~/.aws/credentials`.
    var credentialsFile: AWSProfileFile?
    /// Settings from `~/.aws/config`.
    var configFile: AWSProfileFile?

    /// True when either file has a section for the profile.
    var found: Bool { (credentialsFile?.found ?? false) || (configFile?.found ?? false) }

    /// A setting (lowercased key), from the credentials file first.
    func value(_ key: String) -> String? {
        credentialsFile?.settings[key] ?? configFile?.settings[key]
    }
}
