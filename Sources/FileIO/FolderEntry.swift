/// One name in a folder, as a listing reports it.
package struct FolderEntry: Sendable {
    /// What the listing said the entry is. It describes the moment of listing only: a racing writer may have swapped
    /// the name for something else since, so every call made with the name checks again (O_NOFOLLOW, EISDIR).
    package enum Kind: Sendable, Equatable {
        case folder
        case symbolicLink
        /// A regular file, FIFO, socket or device: removed by its name alone, like a symbolic link.
        case other
        /// The file system did not say (DT_UNKNOWN); `fstatat` must be asked.
        case unknown
    }

    package let name: EntryName
    package let kind: Kind
}

/// A name in a folder, kept as the bytes the file system holds: a name need not be valid UTF-8, and one repaired
/// into a String would name nothing (or something else) when handed back to the kernel.
package struct EntryName: Hashable, Sendable, CustomStringConvertible {
    /// The name's bytes, with a terminating NUL, ready for a C call.
    let terminated: [CChar]

    /// The name `string` (a single path component, no `/`).
    package init(_ string: String) {
        terminated = Array(string.utf8CString)
    }

    init(terminated: [CChar]) {
        self.terminated = terminated
    }

    /// The name's bytes, without the NUL.
    package var bytes: some Collection<UInt8> { terminated.dropLast().lazy.map { UInt8(bitPattern: $0) } }

    /// Whether the name ends with `suffix`.
    package func hasSuffix(_ suffix: String) -> Bool {
        let tail = Array(suffix.utf8)
        return bytes.count >= tail.count && bytes.suffix(tail.count).elementsEqual(tail)
    }

    /// The name for messages: bytes that are not UTF-8 are shown repaired, so this is never handed back to a call.
    package var description: String { String(decoding: bytes, as: UTF8.self) }

    /// `.` or `..`, which every listing has and no removal touches.
    var isSelfOrParent: Bool {
        terminated == [0x2E, 0] || terminated == [0x2E, 0x2E, 0]
    }
}
