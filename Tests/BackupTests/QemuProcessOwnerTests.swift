import Backup
import Testing

/// Who QEMU runs as, read from a hypervisor's capabilities: the DAC model's base label for the domain's type.
@Suite struct QemuProcessOwnerTests {
    static let capabilities = """
        <capabilities>
          <host>
            <uuid>0d1f2c3b-0000-0000-0000-000000000000</uuid>
            <secmodel><model>none</model><doi>0</doi></secmodel>
            <secmodel>
              <model>dac</model>
              <doi>0</doi>
              <baselabel type='kvm'>+64055:+994</baselabel>
              <baselabel type='qemu'>+64056:+995</baselabel>
            </secmodel>
          </host>
        </capabilities>
        """

    @Test func theDACBaseLabelOfTheDomainsTypeNamesTheOwner() {
        #expect(
            QemuProcessOwner(capabilities: Self.capabilities, domainType: "kvm")
                == QemuProcessOwner(uid: 64055, gid: 994))
        #expect(
            QemuProcessOwner(capabilities: Self.capabilities, domainType: "qemu")
                == QemuProcessOwner(uid: 64056, gid: 995))
        // A type without a label of its own takes the first.
        #expect(
            QemuProcessOwner(capabilities: Self.capabilities, domainType: "xen")
                == QemuProcessOwner(uid: 64055, gid: 994))
    }

    @Test func withoutADACModelOrWithAMalformedLabelThereIsNone() {
        let noDAC = "<capabilities><host><secmodel><model>none</model></secmodel></host></capabilities>"
        #expect(QemuProcessOwner(capabilities: noDAC, domainType: "kvm") == nil)
        for label in ["+1:", "x:+2", "+1+2", "", "+99999999999:+1"] {
            let xml =
                "<capabilities><host><secmodel><model>dac</model><baselabel type='kvm'>\(label)</baselabel>"
                + "</secmodel></host></capabilities>"
            #expect(QemuProcessOwner(capabilities: xml, domainType: "kvm") == nil, "\(label)")
        }
        #expect(QemuProcessOwner(capabilities: "not xml", domainType: "kvm") == nil)
    }

    @Test func theDomainTypeIsTheRootsAttribute() {
        #expect(QemuProcessOwner.domainType(of: "<domain type='kvm'><name>a</name></domain>") == "kvm")
        #expect(QemuProcessOwner.domainType(of: "<domain><name>a</name></domain>") == "qemu")
    }
}
