;; Grows its linear memory one page at a time until memory.grow fails, then aborts with
;; `unreachable`, as a C program does when malloc returns NULL.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable))
