// The test support's child processes (`ServerProcess`, `freeTCPPort`) live in AeselLocalCluster, which
// `aesel cluster` uses too; the tests and the benchmark see them through this module as before.
@_exported import AeselLocalCluster
