;; Echoes its argument buffer, its environment buffer (both NUL-separated, as WASI hands them over)
;; and then all of stdin to stdout, separated by "|".
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get"
    (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  ;; 0: iovec, 8: count written/read, 64/68: sizes, 96: separator,
  ;; 1024: argv pointers, 4096: argv strings, 8192: environ pointers, 12288: environ strings,
  ;; 16384: stdin buffer (4096 bytes).
  (memory (export "memory") 1)
  (data (i32.const 96) "|")
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (local $n i32)
    (drop (call $args_sizes_get (i32.const 64) (i32.const 68)))
    (drop (call $args_get (i32.const 1024) (i32.const 4096)))
    (call $write (i32.const 4096) (i32.load (i32.const 68)))
    (call $write (i32.const 96) (i32.const 1))
    (drop (call $environ_sizes_get (i32.const 64) (i32.const 68)))
    (drop (call $environ_get (i32.const 8192) (i32.const 12288)))
    (call $write (i32.const 12288) (i32.load (i32.const 68)))
    (call $write (i32.const 96) (i32.const 1))
    (block $done
      (loop $more
        (i32.store (i32.const 0) (i32.const 16384))
        (i32.store (i32.const 4) (i32.const 4096))
        (br_if $done (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $done (i32.eqz (local.get $n)))
        (call $write (i32.const 16384) (local.get $n))
        (br $more)))))
