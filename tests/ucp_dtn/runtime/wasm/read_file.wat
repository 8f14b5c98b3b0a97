;; Opens the path given as argv[1] relative to the preopened directory fd PREOPEN_FD (the test
;; substitutes 3 for the guest's "/" or 4 for "."), following symlinks, and copies the file to
;; stdout. Exits with the WASI errno as its exit code if path_open fails.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get"
    (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0: iovec, 8: count, 16: opened fd, 64/68: argc and argv buffer size,
  ;; 1024: argv pointers, 4096: argv strings, 16384: copy buffer (4096 bytes).
  (memory (export "memory") 1)
  (func (export "_start")
    (local $path i32) (local $len i32) (local $err i32) (local $fd i32) (local $n i32)
    (drop (call $args_sizes_get (i32.const 64) (i32.const 68)))
    (drop (call $args_get (i32.const 1024) (i32.const 4096)))
    (local.set $path (i32.load (i32.const 1028)))
    ;; argv[1] is the last string: it ends one byte (its NUL) before the end of the buffer.
    (local.set $len
      (i32.sub
        (i32.sub (i32.add (i32.const 4096) (i32.load (i32.const 68))) (local.get $path))
        (i32.const 1)))
    ;; dirflags: LOOKUPFLAGS_SYMLINK_FOLLOW (1); rights: fd_read (1 << 1).
    (local.set $err
      (call $path_open (i32.const PREOPEN_FD) (i32.const 1) (local.get $path) (local.get $len)
        (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
    (if (local.get $err)
      (then (call $proc_exit (local.get $err))))
    (local.set $fd (i32.load (i32.const 16)))
    (block $done
      (loop $more
        (i32.store (i32.const 0) (i32.const 16384))
        (i32.store (i32.const 4) (i32.const 4096))
        (br_if $done (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $done (i32.eqz (local.get $n)))
        (i32.store (i32.const 4) (local.get $n))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (br $more)))))
