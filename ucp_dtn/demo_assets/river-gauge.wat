;; river-gauge: reads water levels (one whole number of centimetres per line) on stdin and
;; prints how many readings there were, the highest, and how many were above the flood mark.
;; Usage: river-gauge [FLOOD_MARK_CM]   (default 300)
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get"
    (func $args_get (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; 0: iovec (ptr, len); 8: nread/nwritten; 16: argc; 20: argv buf size;
  ;; 64..127: argv pointers; 128..1023: argv strings; 1024..33791: input buffer;
  ;; 34000..34255: output line.
  (global $count (mut i32) (i32.const 0))
  (global $max (mut i32) (i32.const 0))
  (global $above (mut i32) (i32.const 0))
  (global $mark (mut i32) (i32.const 300))
  (global $out (mut i32) (i32.const 34000))
  (data (i32.const 33800) "readings=")
  (data (i32.const 33820) " max_cm=")
  (data (i32.const 33840) " above_mark=")
  (data (i32.const 33860) " mark_cm=")

  (func $reading (param $value i32)
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (if (i32.gt_u (local.get $value) (global.get $max))
      (then (global.set $max (local.get $value))))
    (if (i32.gt_u (local.get $value) (global.get $mark))
      (then (global.set $above (i32.add (global.get $above) (i32.const 1))))))

  (func $put (param $src i32) (param $len i32)
    (memory.copy (global.get $out) (local.get $src) (local.get $len))
    (global.set $out (i32.add (global.get $out) (local.get $len))))

  (func $put_number (param $n i32)
    (local $start i32) (local $end i32) (local $tmp i32)
    (local.set $start (global.get $out))
    (loop $digits
      (i32.store8 (global.get $out)
        (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (global.set $out (i32.add (global.get $out) (i32.const 1)))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digits (i32.ne (local.get $n) (i32.const 0))))
    ;; reverse the digits in place
    (local.set $end (i32.sub (global.get $out) (i32.const 1)))
    (block $done
      (loop $swap
        (br_if $done (i32.ge_u (local.get $start) (local.get $end)))
        (local.set $tmp (i32.load8_u (local.get $start)))
        (i32.store8 (local.get $start) (i32.load8_u (local.get $end)))
        (i32.store8 (local.get $end) (local.get $tmp))
        (local.set $start (i32.add (local.get $start) (i32.const 1)))
        (local.set $end (i32.sub (local.get $end) (i32.const 1)))
        (br $swap))))

  (func $parse_mark
    (local $p i32) (local $c i32) (local $v i32)
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (if (i32.lt_u (i32.load (i32.const 16)) (i32.const 2)) (then (return)))
    (if (i32.gt_u (i32.load (i32.const 20)) (i32.const 896)) (then (return)))
    (drop (call $args_get (i32.const 64) (i32.const 128)))
    (local.set $p (i32.load (i32.const 68)))
    (block $end
      (loop $chars
        (local.set $c (i32.load8_u (local.get $p)))
        (br_if $end (i32.lt_u (local.get $c) (i32.const 48)))
        (br_if $end (i32.gt_u (local.get $c) (i32.const 57)))
        (local.set $v (i32.add (i32.mul (local.get $v) (i32.const 10))
                               (i32.sub (local.get $c) (i32.const 48))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $chars)))
    (global.set $mark (local.get $v)))

  (func (export "_start")
    (local $n i32) (local $i i32) (local $c i32) (local $value i32) (local $in i32)
    (call $parse_mark)
    (block $eof
      (loop $read
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 32768))
        (br_if $eof (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $i (i32.const 0))
        (block $chunk_done
          (loop $bytes
            (br_if $chunk_done (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $c (i32.load8_u (i32.add (i32.const 1024) (local.get $i))))
            (if (i32.and (i32.ge_u (local.get $c) (i32.const 48))
                         (i32.le_u (local.get $c) (i32.const 57)))
              (then
                (local.set $value (i32.add (i32.mul (local.get $value) (i32.const 10))
                                           (i32.sub (local.get $c) (i32.const 48))))
                (local.set $in (i32.const 1)))
              (else
                (if (local.get $in)
                  (then (call $reading (local.get $value))))
                (local.set $value (i32.const 0))
                (local.set $in (i32.const 0))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $bytes)))
        (br $read)))
    (if (local.get $in) (then (call $reading (local.get $value))))
    (call $put (i32.const 33800) (i32.const 9))
    (call $put_number (global.get $count))
    (call $put (i32.const 33820) (i32.const 8))
    (call $put_number (global.get $max))
    (call $put (i32.const 33840) (i32.const 12))
    (call $put_number (global.get $above))
    (call $put (i32.const 33860) (i32.const 9))
    (call $put_number (global.get $mark))
    (i32.store8 (global.get $out) (i32.const 10))
    (global.set $out (i32.add (global.get $out) (i32.const 1)))
    (i32.store (i32.const 0) (i32.const 34000))
    (i32.store (i32.const 4) (i32.sub (global.get $out) (i32.const 34000)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
