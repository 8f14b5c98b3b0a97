;; Divides by zero: a wasm trap.
(module
  (memory (export "memory") 1)
  (func $divide (param $a i32) (param $b i32) (result i32)
    (i32.div_s (local.get $a) (local.get $b)))
  (func (export "_start") (drop (call $divide (i32.const 1) (i32.const 0)))))
