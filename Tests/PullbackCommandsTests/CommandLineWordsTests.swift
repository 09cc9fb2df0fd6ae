import Testing

@testable import PullbackCommands

@Suite("Completion reads the command line's words")
struct CommandLineWordsTests {
    @Test("an option's value: separate or with =, the last one, quoted as typed")
    func values() {
        let words = ["pullback", "restore", "--repo", "'/tmp/my repo'", "web", "--at", ""]
        #expect(CommandLineWords.value(of: "--repo", in: words, before: 6) == "/tmp/my repo")
        #expect(CommandLineWords.value(of: "--repo", in: ["pullback", "list", "--repo=/a\\ b"], before: 9) == "/a b")
        #expect(CommandLineWords.value(of: "--connect", in: words, before: 6) == nil)
        // The word being typed is not a value yet.
        #expect(CommandLineWords.value(of: "--repo", in: ["pullback", "list", "--repo", "/tm"], before: 3) == nil)
        #expect(CommandLineWords.unquoted("\"a\\\"b\"'c d'") == "a\"bc d")
    }
}
