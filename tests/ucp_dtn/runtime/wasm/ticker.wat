;; Writes "tick" to stdout every 50 ms, forever (each sleep a WASI poll_oneoff).
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  ;; 0: iovec, 8: count, 16: subscription (48 bytes), 128: event, 256: "tick\n".
  (memory (export "memory") 1)
  (data (i32.const 256) "tick\n")
  (func (export "_start")
    ;; Clock subscription: tag 0 (clock) at 16+8, monotonic clock (1) at 16+16, 50 ms at 16+24.
    (i32.store8 (i32.const 24) (i32.const 0))
    (i32.store (i32.const 32) (i32.const 1))
    (i64.store (i32.const 40) (i64.const 50000000))
    (loop $forever
      (i32.store (i32.const 0) (i32.const 256))
      (i32.store (i32.const 4) (i32.const 5))
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (drop (call $poll_oneoff (i32.const 16) (i32.const 128) (i32.const 1) (i32.const 8)))
      (br $forever))))
