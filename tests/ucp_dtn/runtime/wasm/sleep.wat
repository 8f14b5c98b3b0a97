;; Sleeps for an hour inside the WASI host call poll_oneoff: an epoch deadline cannot interrupt a
;; host call, so only the worker's wall-clock kill stops it.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    ;; Subscription at 0 (48 bytes): userdata u64 @0, tag u8 @8 (0 = clock),
    ;; clock id u32 @16 (1 = monotonic), timeout u64 @24 (ns), precision u64 @32, flags u16 @40.
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 3600000000000))
    (drop (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))
