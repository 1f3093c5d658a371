import AeselModel
import AeselStore
@testable import CLyman
import NIOCore
import Testing

/// CLyman's ingest state machines on their own: scene members and the sequence window.
@Suite("Ingest state")
struct IngestStateTests {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    /// Members whose loads never answer by themselves: the test installs each answer.
    static func members(_ configuration: SceneMembers.Configuration = .init()) -> SceneMembers {
        let members = SceneMembers(configuration: configuration, metrics: IngestMetrics()) { _ in
            try await Task.sleep(for: .seconds(3600))
            return SceneMemberKeys()
        }
        members.onLoad { _, _ in }
        return members
    }

    @Test("Scene members: the first event loads, later ones wait for it, then members pass and others drop")
    func firstLoad() {
        let members = Self.members()
        #expect(members.check(objectKey: "o", kind: .objectUpdate, sceneKey: "s", now: Self.start) == .hold)
        #expect(members.check(objectKey: "o", kind: .objectUpdate, sceneKey: "s", now: Self.start) == .hold)
        members.finishLoad(sceneKey: "s", keys: SceneMemberKeys(objects: ["o"], properties: ["p"]), now: Self.start)
        #expect(members.check(objectKey: "o", kind: .objectUpdate, sceneKey: "s", now: Self.start) == .member)
        #expect(members.check(objectKey: "p", kind: .propertyUpdate, sceneKey: "s", now: Self.start) == .member)
        // A property key is not an object key.
        #expect(members.check(objectKey: "p", kind: .objectUpdate, sceneKey: "s", now: Self.start) == .notMember)
    }

    @Test("Scene members: a missing key reloads at most every so often; changes made during a load survive it")
    func reloads() {
        let members = Self.members()
        _ = members.check(objectKey: "o", kind: .objectUpdate, sceneKey: "s", now: Self.start)
        members.added("new", kind: .objectUpdate, to: "s")
        members.finishLoad(sceneKey: "s", keys: SceneMemberKeys(objects: ["o"]), now: Self.start)
        #expect(members.check(objectKey: "new", kind: .objectUpdate, sceneKey: "s", now: Self.start) == .member)
        #expect(members.check(objectKey: "elsewhere", kind: .objectUpdate, sceneKey: "s", now: Self.start) == .notMember)
        let later = Self.start + members.configuration.missReloadInterval + .milliseconds(1)
        #expect(members.check(objectKey: "elsewhere", kind: .objectUpdate, sceneKey: "s", now: later) == .hold)
        // While it reloads, members pass and other keys wait.
        #expect(members.check(objectKey: "o", kind: .objectUpdate, sceneKey: "s", now: later) == .member)
        #expect(members.check(objectKey: "elsewhere", kind: .objectUpdate, sceneKey: "s", now: later) == .hold)
        members.removed("o", kind: .objectUpdate, from: "s")
        members.finishLoad(sceneKey: "s", keys: SceneMemberKeys(objects: ["o", "new", "elsewhere"]), now: later)
        #expect(members.check(objectKey: "elsewhere", kind: .objectUpdate, sceneKey: "s", now: later) == .member)
        #expect(members.check(objectKey: "o", kind: .objectUpdate, sceneKey: "s", now: later) == .notMember, "deleted during the load")
        // Moved: it leaves its old scene.
        _ = members.check(objectKey: "x", kind: .objectUpdate, sceneKey: "t", now: later)
        members.finishLoad(sceneKey: "t", keys: SceneMemberKeys(), now: later)
        members.moved("new", kind: .objectUpdate, to: "t")
        #expect(members.check(objectKey: "new", kind: .objectUpdate, sceneKey: "t", now: later) == .member)
        #expect(members.check(objectKey: "new", kind: .objectUpdate, sceneKey: "s", now: later) == .notMember)
    }

    @Test("Scene members: loads in flight and scenes held are bounded; a full table evicts made-up scenes first")
    func bounds() {
        var configuration = SceneMembers.Configuration()
        configuration.maximumScenes = 100
        configuration.maximumConcurrentLoads = 4
        let members = Self.members(configuration)
        for index in 0..<4 {
            #expect(members.check(objectKey: "o", kind: .objectUpdate, sceneKey: "s\(index)", now: Self.start) == .hold)
        }
        #expect(members.check(objectKey: "o", kind: .objectUpdate, sceneKey: "s4", now: Self.start) == .overloaded)
        members.finishLoad(sceneKey: "s0", keys: SceneMemberKeys(objects: ["o"]), now: Self.start)
        for index in 1..<4 { members.finishLoad(sceneKey: "s\(index)", keys: SceneMemberKeys(), now: Self.start) }
        for index in 4..<300 {
            _ = members.check(objectKey: "o", kind: .objectUpdate, sceneKey: "made-up-\(index)", now: Self.start)
            members.finishLoad(sceneKey: "made-up-\(index)", keys: SceneMemberKeys(), now: Self.start)
        }
        #expect(members.count <= 100)
        #expect(members.check(objectKey: "o", kind: .objectUpdate, sceneKey: "s0", now: Self.start) == .member, "a real scene stays")
        // A failed first load forgets the scene: its next event tries again.
        _ = members.check(objectKey: "o", kind: .objectUpdate, sceneKey: "down", now: Self.start)
        members.finishLoad(sceneKey: "down", keys: nil, now: Self.start)
        #expect(members.check(objectKey: "o", kind: .objectUpdate, sceneKey: "down", now: Self.start) == .hold)
    }

    static let deviceA = EventSender.address(try! SocketAddress(ipAddress: "127.0.0.1", port: 40001))
    static let deviceB = EventSender.address(try! SocketAddress(ipAddress: "127.0.0.1", port: 40002))

    @Test("Sequences: a sender's older and repeated numbers are stale; far older ones, or after a quiet spell, start again")
    func sequences() {
        var sequences = ObjectSequences()
        func accept(_ sequence: UInt64, at now: NIODeadline = Self.start) -> Bool {
            sequences.accept(objectKey: "o", from: Self.deviceA, epoch: 0, sequence: sequence, now: now).accepted
        }
        #expect(accept(10))
        #expect(!accept(10))
        #expect(!accept(9))
        #expect(accept(11))
        #expect(accept(.max))
        #expect(accept(1), "far behind: a sender counting again")
        #expect(!accept(1))
        #expect(accept(500))
        #expect(accept(400, at: Self.start + sequences.configuration.memory), "forgotten after a quiet spell")
    }

    @Test("Sequences: another sender's numbers never make an event stale; each sender is judged against itself")
    func sequencesPerSender() {
        var sequences = ObjectSequences()
        #expect(sequences.accept(objectKey: "o", from: Self.deviceA, epoch: 0, sequence: 900, now: Self.start).accepted)
        #expect(sequences.accept(objectKey: "o", from: Self.deviceB, epoch: 0, sequence: 1, now: Self.start).accepted, "B is not behind A")
        #expect(sequences.accept(objectKey: "o", from: Self.deviceB, epoch: 0, sequence: 2, now: Self.start).accepted)
        #expect(!sequences.accept(objectKey: "o", from: Self.deviceB, epoch: 0, sequence: 2, now: Self.start).accepted, "B's own repeat")
        #expect(!sequences.accept(objectKey: "o", from: Self.deviceA, epoch: 0, sequence: 899, now: Self.start).accepted, "A's own late one")
        #expect(sequences.accept(objectKey: "p", from: Self.deviceA, epoch: 0, sequence: 1, now: Self.start).accepted, "per object too")
    }

    @Test("Sequences: a larger epoch starts a new count; an event of an earlier epoch is stale")
    func sequenceEpochs() {
        var sequences = ObjectSequences()
        func accept(_ sequence: UInt64, epoch: UInt32) -> Bool {
            sequences.accept(objectKey: "o", from: Self.deviceA, epoch: epoch, sequence: sequence, now: Self.start).accepted
        }
        #expect(accept(500, epoch: 7))
        #expect(!accept(499, epoch: 7))
        #expect(accept(1, epoch: 8), "the device started counting again")
        #expect(accept(2, epoch: 8))
        #expect(!accept(501, epoch: 7), "a late event of the earlier run")
        #expect(!accept(2, epoch: 8))
    }

    @Test("Sequences: a full table forgets idle objects, then everything, and says how many")
    func sequenceBounds() {
        var configuration = ObjectSequences.Configuration()
        configuration.capacity = 10
        var sequences = ObjectSequences(configuration: configuration)
        for index in 0..<10 { _ = sequences.accept(objectKey: "old-\(index)", from: Self.deviceA, epoch: 0, sequence: 1, now: Self.start) }
        let later = Self.start + configuration.memory
        let first = sequences.accept(objectKey: "new-0", from: Self.deviceA, epoch: 0, sequence: 1, now: later)
        #expect(first.accepted && first.evicted == 10, "the idle ones go")
        for index in 1..<10 { _ = sequences.accept(objectKey: "new-\(index)", from: Self.deviceA, epoch: 0, sequence: 1, now: later) }
        let full = sequences.accept(objectKey: "one-more", from: Self.deviceA, epoch: 0, sequence: 1, now: later)
        #expect(full.accepted && full.evicted == 10, "none idle: all go")
        #expect(sequences.count == 1)
    }
}
