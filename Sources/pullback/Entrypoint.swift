import PullbackCommands

@main
struct Entrypoint {
    static func main() async {
        await Pullback.main()
    }
}
