import ArgumentParser

/// `--connect URI`: the libvirt connection a command uses.
struct LibvirtOption: ParsableArguments {
    @Option(name: .customLong("connect"), help: "libvirt URI (default: LIBVIRT_DEFAULT_URI, else qemu:///system).")
    var uri: String?
}
