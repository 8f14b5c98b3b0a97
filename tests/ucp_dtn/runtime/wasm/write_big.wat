;; Creates "big.bin" in the job directory and appends 64 KiB blocks to it, 32 times (2 MiB).
;; Exits with the WASI errno as its exit code as soon as path_open or fd_write fails.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  (data (i32.const 64) "big.bin")
  (func (export "_start")
    (local $err i32) (local $fd i32) (local $i i32)
    ;; oflags: O_CREAT (1) | O_TRUNC (8); rights: fd_write (1 << 6).
    (local.set $err
      (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 7)
        (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 16)))
    (if (local.get $err) (then (call $proc_exit (local.get $err))))
    (local.set $fd (i32.load (i32.const 16)))
    (memory.fill (i32.const 65536) (i32.const 98) (i32.const 65536))
    (loop $more
      (i32.store (i32.const 0) (i32.const 65536))
      (i32.store (i32.const 4) (i32.const 65536))
      (local.set $err (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
      (if (local.get $err) (then (call $proc_exit (local.get $err))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 32))))))
