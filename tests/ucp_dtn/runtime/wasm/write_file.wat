;; Creates "out.txt" in the directory preopened as fd 3 (the job directory, guest "/") and writes
;; one line into it. Exits with the WASI errno as its exit code if the file cannot be opened.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "out.txt")
  (data (i32.const 96) "written by the job\n")
  (func (export "_start")
    (local $err i32)
    ;; oflags: O_CREAT (1) | O_TRUNC (8); rights: fd_write (1 << 6).
    (local.set $err
      (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 7)
        (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 16)))
    (if (local.get $err)
      (then (call $proc_exit (local.get $err))))
    (i32.store (i32.const 0) (i32.const 96))
    (i32.store (i32.const 4) (i32.const 19))
    (drop (call $fd_write (i32.load (i32.const 16)) (i32.const 0) (i32.const 1) (i32.const 8)))))
