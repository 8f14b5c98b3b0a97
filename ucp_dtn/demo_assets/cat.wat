;; cat OUT IN...: writes the concatenation of the files IN... to the file OUT (paths relative
;; to the job directory, preopened as fd 3) and "cat: ok" to stdout. A file it cannot open: a
;; line on stderr, and the WASI errno as exit status.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0: iovec, 8: count, 16: opened fd, 64/68: argc and argv size, 512: texts,
  ;; 1024: argv pointers, 4096: argv strings, 16384: copy buffer (32 KiB).
  (memory (export "memory") 1)
  (data (i32.const 512) "cannot open ")
  (data (i32.const 544) "\n")
  (data (i32.const 560) "cat: ok\n")
  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $end
      (loop $next
        (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $open (param $path i32) (param $oflags i32) (param $rights i64) (result i32)
    (local $err i32) (local $len i32)
    (local.set $len (call $strlen (local.get $path)))
    (local.set $err
      (call $path_open (i32.const 3) (i32.const 0) (local.get $path) (local.get $len)
        (local.get $oflags) (local.get $rights) (i64.const 0) (i32.const 0) (i32.const 16)))
    (if (local.get $err)
      (then
        (call $write (i32.const 2) (i32.const 512) (i32.const 12))
        (call $write (i32.const 2) (local.get $path) (local.get $len))
        (call $write (i32.const 2) (i32.const 544) (i32.const 1))
        (call $proc_exit (local.get $err))))
    (i32.load (i32.const 16)))
  (func (export "_start")
    (local $argc i32) (local $i i32) (local $out i32) (local $in i32) (local $n i32)
    (drop (call $args_sizes_get (i32.const 64) (i32.const 68)))
    (drop (call $args_get (i32.const 1024) (i32.const 4096)))
    (local.set $argc (i32.load (i32.const 64)))
    ;; oflags O_CREAT | O_TRUNC, rights fd_write
    (local.set $out (call $open (i32.load (i32.const 1028)) (i32.const 9) (i64.const 64)))
    (local.set $i (i32.const 2))
    (block $done
      (loop $file
        (br_if $done (i32.ge_u (local.get $i) (local.get $argc)))
        (local.set $in
          (call $open
            (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2))))
            (i32.const 0) (i64.const 2)))
        (block $eof
          (loop $more
            (i32.store (i32.const 0) (i32.const 16384))
            (i32.store (i32.const 4) (i32.const 32768))
            (br_if $eof (call $fd_read (local.get $in) (i32.const 0) (i32.const 1) (i32.const 8)))
            (local.set $n (i32.load (i32.const 8)))
            (br_if $eof (i32.eqz (local.get $n)))
            (call $write (local.get $out) (i32.const 16384) (local.get $n))
            (br $more)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $file)))
    (call $write (i32.const 1) (i32.const 560) (i32.const 8))))
