"""The run side: a suite (suites, sweeps) expanded into runs, each run's child launched (member),
where children run (executors, shards), results gathered as they arrive (runner), and `ab`'s two
code versions interleaved on one machine. Never imported by the read side or by a child."""
