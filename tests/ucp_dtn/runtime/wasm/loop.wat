;; Spins forever: only a CPU limit (fuel or the epoch deadline) or a kill stops it.
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $forever (br $forever))))
