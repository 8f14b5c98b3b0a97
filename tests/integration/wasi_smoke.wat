;; wasi-smoke in WebAssembly text: the equivalent of REC's tests/wasi-smoke/src/main.rs
;; (github.com/umr-ds/resilient-edge-computing), written from its behaviour, for comparing our
;; runs of REC's plans with what REC's own tests assert. It prints
;;
;;   ARGS=<argv joined by ",">      (all of argv, as the runtime passes it)
;;   ENV_FOO=<$FOO, or nothing>
;;   STDIN=<all of stdin, each newline written as the two characters \n>
;;   DATA_READ=<infile.txt with surrounding whitespace trimmed, or <missing>>
;;
;; to stdout, one line each, writes "hello-from-wasi" to out.txt, "TO_STDERR" to stderr, and
;; exits with the status in $EXIT (0 if unset or not a number). Paths are opened beneath the
;; first preopened directory (fd 3), which is the sandbox root in both REC and ucp-dtn; as the
;; Rust original unwraps the write of out.txt, failing to write it traps.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0: iovec, 8: count, 16: opened fd, 64/68: argc and argv size, 72/76: environ count and size,
  ;; 512: texts, 1024: argv pointers, 2048: argv strings, 12288: environ pointers,
  ;; 16384: environ strings, 32768: output line, 49152: stdin, 65536: infile.txt (64 KiB).
  (memory (export "memory") 2)
  (data (i32.const 512) "ARGS=")
  (data (i32.const 520) "ENV_FOO=")
  (data (i32.const 530) "STDIN=")
  (data (i32.const 540) "DATA_READ=")
  (data (i32.const 552) "<missing>")
  (data (i32.const 564) "infile.txt")
  (data (i32.const 576) "out.txt")
  (data (i32.const 584) "hello-from-wasi")
  (data (i32.const 600) "TO_STDERR\n")
  (data (i32.const 612) "FOO")
  (data (i32.const 616) "EXIT")
  (global $out (mut i32) (i32.const 32768))

  (func $put (param $byte i32)
    (i32.store8 (global.get $out) (local.get $byte))
    (global.set $out (i32.add (global.get $out) (i32.const 1))))
  (func $put_bytes (param $ptr i32) (param $len i32) (local $i i32)
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $put (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $more))))
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $more)))
    (local.get $n))
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  ;; Ends the line being built and writes it to stdout.
  (func $line
    (call $put (i32.const 10))
    (call $write (i32.const 1) (i32.const 32768) (i32.sub (global.get $out) (i32.const 32768)))
    (global.set $out (i32.const 32768)))
  ;; The value of environment variable NAME (NUL-terminated), or 0.
  (func $getenv (param $name i32) (param $len i32) (result i32)
    (local $i i32) (local $entry i32) (local $k i32)
    (block $none
      (loop $entries
        (br_if $none (i32.ge_u (local.get $i) (i32.load (i32.const 72))))
        (local.set $entry
          (i32.load (i32.add (i32.const 12288) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $k (i32.const 0))
        (block $differs
          (loop $chars
            (if (i32.ge_u (local.get $k) (local.get $len))
              (then
                (br_if $differs
                  (i32.ne (i32.load8_u (i32.add (local.get $entry) (local.get $k))) (i32.const 61)))
                (return (i32.add (i32.add (local.get $entry) (local.get $k)) (i32.const 1)))))
            (br_if $differs
              (i32.ne (i32.load8_u (i32.add (local.get $entry) (local.get $k)))
                      (i32.load8_u (i32.add (local.get $name) (local.get $k)))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $chars)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $entries)))
    (i32.const 0))
  ;; Reads all of FD into memory at BUF; the number of bytes.
  (func $read_all (param $fd i32) (param $buf i32) (param $room i32) (result i32) (local $n i32)
    (block $done
      (loop $more
        (i32.store (i32.const 0) (i32.add (local.get $buf) (local.get $n)))
        (i32.store (i32.const 4) (i32.sub (local.get $room) (local.get $n)))
        (br_if $done (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
        (br_if $done (i32.eqz (i32.load (i32.const 8))))
        (local.set $n (i32.add (local.get $n) (i32.load (i32.const 8))))
        (br $more)))
    (local.get $n))
  (func $is_space (param $c i32) (result i32)
    (i32.or (i32.eq (local.get $c) (i32.const 32))
      (i32.and (i32.ge_u (local.get $c) (i32.const 9)) (i32.le_u (local.get $c) (i32.const 13)))))

  (func (export "_start")
    (local $i i32) (local $n i32) (local $start i32) (local $end i32) (local $value i32)
    (local $code i32) (local $c i32)
    ;; ARGS
    (drop (call $args_sizes_get (i32.const 64) (i32.const 68)))
    (drop (call $args_get (i32.const 1024) (i32.const 2048)))
    (call $put_bytes (i32.const 512) (i32.const 5))
    (block $done
      (loop $args
        (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 64))))
        (if (local.get $i) (then (call $put (i32.const 44))))
        (local.set $value (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))
        (call $put_bytes (local.get $value) (call $strlen (local.get $value)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $args)))
    (call $line)
    ;; ENV
    (drop (call $environ_sizes_get (i32.const 72) (i32.const 76)))
    (drop (call $environ_get (i32.const 12288) (i32.const 16384)))
    (call $put_bytes (i32.const 520) (i32.const 8))
    (local.set $value (call $getenv (i32.const 612) (i32.const 3)))
    (if (local.get $value)
      (then (call $put_bytes (local.get $value) (call $strlen (local.get $value)))))
    (call $line)
    ;; STDIN
    (local.set $n (call $read_all (i32.const 0) (i32.const 49152) (i32.const 16384)))
    (call $put_bytes (i32.const 530) (i32.const 6))
    (local.set $i (i32.const 0))
    (block $done
      (loop $bytes
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $c (i32.load8_u (i32.add (i32.const 49152) (local.get $i))))
        (if (i32.eq (local.get $c) (i32.const 10))
          (then (call $put (i32.const 92)) (call $put (i32.const 110)))
          (else (call $put (local.get $c))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $bytes)))
    (call $line)
    ;; DATA DIR: read infile.txt (trimmed), write out.txt
    (call $put_bytes (i32.const 540) (i32.const 10))
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 564) (i32.const 10)
          (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16))
      (then (call $put_bytes (i32.const 552) (i32.const 9)))
      (else
        (local.set $end (call $read_all (i32.load (i32.const 16)) (i32.const 65536) (i32.const 65536)))
        (drop (call $fd_close (i32.load (i32.const 16))))
        (local.set $start (i32.const 0))
        (block $front
          (loop $skip
            (br_if $front (i32.ge_u (local.get $start) (local.get $end)))
            (br_if $front (i32.eqz (call $is_space
              (i32.load8_u (i32.add (i32.const 65536) (local.get $start))))))
            (local.set $start (i32.add (local.get $start) (i32.const 1)))
            (br $skip)))
        (block $back
          (loop $skip
            (br_if $back (i32.le_u (local.get $end) (local.get $start)))
            (br_if $back (i32.eqz (call $is_space
              (i32.load8_u (i32.add (i32.const 65535) (local.get $end))))))
            (local.set $end (i32.sub (local.get $end) (i32.const 1)))
            (br $skip)))
        (call $put_bytes (i32.add (i32.const 65536) (local.get $start))
          (i32.sub (local.get $end) (local.get $start)))))
    (call $line)
    ;; oflags O_CREAT | O_TRUNC, rights fd_write
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 576) (i32.const 7)
          (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 16))
      (then unreachable))
    (call $write (i32.load (i32.const 16)) (i32.const 584) (i32.const 15))
    (drop (call $fd_close (i32.load (i32.const 16))))
    ;; STDERR
    (call $write (i32.const 2) (i32.const 600) (i32.const 10))
    ;; EXIT code from $EXIT (digits only; anything else is 0)
    (local.set $value (call $getenv (i32.const 616) (i32.const 4)))
    (if (local.get $value)
      (then
        (local.set $n (call $strlen (local.get $value)))
        (local.set $i (i32.const 0))
        (block $bad
          (br_if $bad (i32.eqz (local.get $n)))
          (loop $digits
            (local.set $c (i32.load8_u (i32.add (local.get $value) (local.get $i))))
            (br_if $bad (i32.or (i32.lt_u (local.get $c) (i32.const 48))
                                (i32.gt_u (local.get $c) (i32.const 57))))
            (local.set $code (i32.add (i32.mul (local.get $code) (i32.const 10))
                                      (i32.sub (local.get $c) (i32.const 48))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $digits (i32.lt_u (local.get $i) (local.get $n))))
          (call $proc_exit (local.get $code)))))
    (call $proc_exit (i32.const 0))))
