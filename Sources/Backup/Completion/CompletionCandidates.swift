import Repository

/// What a shell completion may offer. The bash script of swift-argument-parser hands the candidates to
/// `compgen -W`, which expands `$(...)`, backticks, `$var`, braces and globs in them, so a name taken from libvirt
/// or from a repository could run code at a TAB. Only names pullback could use anyway are offered
/// (``RepositoryNames/isValid(_:)``, as `backup` requires of a domain), and of those only the ones made of
/// characters no shell expands or splits on, should that rule ever widen.
public enum CompletionCandidates {
    /// The words of `candidates` a shell may be handed, in their order.
    public static func offerable(_ candidates: [String]) -> [String] {
        candidates.filter(isOfferable)
    }

    /// Whether `candidate` is a name pullback accepts made only of letters, digits and `._+-@:`.
    public static func isOfferable(_ candidate: String) -> Bool {
        RepositoryNames.isValid(candidate) && candidate.unicodeScalars.allSatisfy(isInert)
    }

    private static func isInert(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "+", "-", "@", ":": true
        default: false
        }
    }
}
