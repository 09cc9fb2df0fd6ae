/// The name of an object in a store, relative to the store's root: one or more components joined by `/`, each a
/// single path component that names nothing but itself (not empty, not `.` or `..`, no `/` and no NUL byte). A key
/// can therefore never climb out of its store, whatever the store is: a folder or a bucket's prefix.
public struct ObjectKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The most bytes a component may have: a file system's name limit.
    public static let maxComponentLength = 255
    /// The most bytes a whole key may have: S3's limit on object keys.
    public static let maxLength = 1024

    /// The key's components, outermost first; never empty.
    public let components: [String]

    /// The key `text`, components separated by single `/` (no leading or trailing one). Throws
    /// ``StoreError/Code/invalidKey`` for anything else.
    public init(_ text: String) throws(StoreError) {
        try self.init(components: text.split(separator: "/", omittingEmptySubsequences: false).map(String.init))
    }

    /// The key of `components`, each checked. Throws ``StoreError/Code/invalidKey`` when one is not a single
    /// component, or when there are none.
    public init(components: [String]) throws(StoreError) {
        guard !components.isEmpty else { throw StoreError(.invalidKey, "an object key needs at least one name") }
        for component in components where !Self.isValidComponent(component) {
            throw StoreError(
                .invalidKey,
                "\(StoreError.quoted(component)) cannot be part of an object key: each part is one non-empty name, not '.' or '..', without '/' or NUL"
            )
        }
        let length = components.reduce(components.count - 1) { $0 + $1.utf8.count }
        guard length <= Self.maxLength else {
            throw StoreError(.invalidKey, "an object key of \(length) bytes is longer than \(Self.maxLength)")
        }
        self.components = components
    }

    /// The key of the object `component` under this one.
    public func appending(_ component: String) throws(StoreError) -> ObjectKey {
        try ObjectKey(components: components + [component])
    }

    /// The last component: the object's own name.
    public var name: String { components[components.count - 1] }

    /// The key holding this one, nil for a key of one component (held by the store's root).
    public var parent: ObjectKey? {
        components.count > 1 ? ObjectKey(checked: Array(components.dropLast())) : nil
    }

    /// The key with its last component replaced by `name` (a sibling).
    public func sibling(_ name: String) throws(StoreError) -> ObjectKey {
        try ObjectKey(components: components.dropLast() + [name])
    }

    /// The components joined by `/`.
    public var description: String { components.joined(separator: "/") }

    public static func < (a: ObjectKey, b: ObjectKey) -> Bool {
        a.description.utf8.lexicographicallyPrecedes(b.description.utf8)
    }

    /// Whether `component` is a single name a key may have.
    public static func isValidComponent(_ component: String) -> Bool {
        let bytes = component.utf8
        return !bytes.isEmpty && bytes.count <= maxComponentLength && component != "." && component != ".."
            && !bytes.contains(UInt8(ascii: "/")) && !bytes.contains(0)
    }

    /// Components already checked.
    private init(checked components: [String]) {
        self.components = components
    }
}
