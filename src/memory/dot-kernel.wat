;; The scan at the heart of memory search: the integer dot product of one int8 query with every
;; stored int8 row. Each step widens 16 bytes to two i16x8 halves and multiplies them with
;; i32x4.dot_i16x8_s (pmaddwd on x86), which sums adjacent pairs into i32 lanes. No sum can
;; overflow: a product is at most 128 * 128 = 2^14, so even the total of a row is exact up to
;; 2^31 / 2^14 = 131,072 bytes per row, far beyond any embedding.
;;
;; Rows go six at a time: each 16 bytes of the query are loaded and widened once for six rows,
;; and the six accumulators do not wait on each other. On the 2-core benchmark machine, 100,000
;; rows of 1,536 bytes took 37 ms one row at a time, 25 ms two at a time, 23 ms four, 20 ms six
;; and 21 ms eight (spilled registers: x86-64 has 16 vector registers, six rows use 15).
;; The last count % 6 rows go through $one.
;; `npm run build:kernel` compiles this file into dot-kernel.ts.
(module
  ;; Shared, so that a helper thread (scan-helper.ts) can scan half the rows of the same memory.
  (import "env" "memory" (memory 1 65536 shared))
  ;; One row: dot(query, row) over `stride` bytes, a multiple of 16.
  (func $one (param $query i32) (param $row i32) (param $stride i32) (result i32)
    (local $i i32) (local $x v128) (local $y v128) (local $a v128) (local $b v128)
    (block $idone
      (loop $iloop
        (br_if $idone (i32.ge_u (local.get $i) (local.get $stride)))
        (local.set $x (v128.load (i32.add (local.get $row) (local.get $i))))
        (local.set $y (v128.load (i32.add (local.get $query) (local.get $i))))
        (local.set $a (i32x4.add (local.get $a) (i32x4.dot_i16x8_s
          (i16x8.extend_low_i8x16_s (local.get $x)) (i16x8.extend_low_i8x16_s (local.get $y)))))
        (local.set $b (i32x4.add (local.get $b) (i32x4.dot_i16x8_s
          (i16x8.extend_high_i8x16_s (local.get $x)) (i16x8.extend_high_i8x16_s (local.get $y)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $iloop)))
    (local.set $a (i32x4.add (local.get $a) (local.get $b)))
    (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $a)) (i32x4.extract_lane 1 (local.get $a)))
      (i32.add (i32x4.extract_lane 2 (local.get $a)) (i32x4.extract_lane 3 (local.get $a)))))
  ;; out[r] = dot(query, rows[r]) for r < count, as an i32 at out + 4r. `stride` is bytes per
  ;; row, a multiple of 16; query, rows and out are byte offsets, 16-byte aligned.
  (func (export "scores")
    (param $query i32) (param $rows i32) (param $count i32) (param $stride i32) (param $out i32)
    (local $r i32) (local $i i32) (local $row i32) (local $y v128) (local $ql v128) (local $qh v128)
    (local $row0 i32) (local $row1 i32) (local $row2 i32) (local $row3 i32) (local $row4 i32) (local $row5 i32) (local $a0 v128) (local $x0 v128) (local $a1 v128) (local $x1 v128) (local $a2 v128) (local $x2 v128) (local $a3 v128) (local $x3 v128) (local $a4 v128) (local $x4 v128) (local $a5 v128) (local $x5 v128)
    (local.set $row (local.get $rows))
    (block $done
      (loop $rowloop
        (br_if $done (i32.gt_u (i32.add (local.get $r) (i32.const 6)) (local.get $count)))
        (local.set $row0 (i32.add (local.get $row) (i32.mul (local.get $stride) (i32.const 0))))
        (local.set $row1 (i32.add (local.get $row) (i32.mul (local.get $stride) (i32.const 1))))
        (local.set $row2 (i32.add (local.get $row) (i32.mul (local.get $stride) (i32.const 2))))
        (local.set $row3 (i32.add (local.get $row) (i32.mul (local.get $stride) (i32.const 3))))
        (local.set $row4 (i32.add (local.get $row) (i32.mul (local.get $stride) (i32.const 4))))
        (local.set $row5 (i32.add (local.get $row) (i32.mul (local.get $stride) (i32.const 5))))
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0))
        (local.set $a3 (v128.const i32x4 0 0 0 0))
        (local.set $a4 (v128.const i32x4 0 0 0 0))
        (local.set $a5 (v128.const i32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (block $idone
          (loop $iloop
            (br_if $idone (i32.ge_u (local.get $i) (local.get $stride)))
            (local.set $y (v128.load (i32.add (local.get $query) (local.get $i))))
            (local.set $ql (i16x8.extend_low_i8x16_s (local.get $y)))
            (local.set $qh (i16x8.extend_high_i8x16_s (local.get $y)))
            (local.set $x0 (v128.load (i32.add (local.get $row0) (local.get $i))))
            (local.set $x1 (v128.load (i32.add (local.get $row1) (local.get $i))))
            (local.set $x2 (v128.load (i32.add (local.get $row2) (local.get $i))))
            (local.set $x3 (v128.load (i32.add (local.get $row3) (local.get $i))))
            (local.set $x4 (v128.load (i32.add (local.get $row4) (local.get $i))))
            (local.set $x5 (v128.load (i32.add (local.get $row5) (local.get $i))))
            (local.set $a0 (i32x4.add (local.get $a0) (i32x4.dot_i16x8_s
              (i16x8.extend_low_i8x16_s (local.get $x0)) (local.get $ql))))
            (local.set $a0 (i32x4.add (local.get $a0) (i32x4.dot_i16x8_s
              (i16x8.extend_high_i8x16_s (local.get $x0)) (local.get $qh))))
            (local.set $a1 (i32x4.add (local.get $a1) (i32x4.dot_i16x8_s
              (i16x8.extend_low_i8x16_s (local.get $x1)) (local.get $ql))))
            (local.set $a1 (i32x4.add (local.get $a1) (i32x4.dot_i16x8_s
              (i16x8.extend_high_i8x16_s (local.get $x1)) (local.get $qh))))
            (local.set $a2 (i32x4.add (local.get $a2) (i32x4.dot_i16x8_s
              (i16x8.extend_low_i8x16_s (local.get $x2)) (local.get $ql))))
            (local.set $a2 (i32x4.add (local.get $a2) (i32x4.dot_i16x8_s
              (i16x8.extend_high_i8x16_s (local.get $x2)) (local.get $qh))))
            (local.set $a3 (i32x4.add (local.get $a3) (i32x4.dot_i16x8_s
              (i16x8.extend_low_i8x16_s (local.get $x3)) (local.get $ql))))
            (local.set $a3 (i32x4.add (local.get $a3) (i32x4.dot_i16x8_s
              (i16x8.extend_high_i8x16_s (local.get $x3)) (local.get $qh))))
            (local.set $a4 (i32x4.add (local.get $a4) (i32x4.dot_i16x8_s
              (i16x8.extend_low_i8x16_s (local.get $x4)) (local.get $ql))))
            (local.set $a4 (i32x4.add (local.get $a4) (i32x4.dot_i16x8_s
              (i16x8.extend_high_i8x16_s (local.get $x4)) (local.get $qh))))
            (local.set $a5 (i32x4.add (local.get $a5) (i32x4.dot_i16x8_s
              (i16x8.extend_low_i8x16_s (local.get $x5)) (local.get $ql))))
            (local.set $a5 (i32x4.add (local.get $a5) (i32x4.dot_i16x8_s
              (i16x8.extend_high_i8x16_s (local.get $x5)) (local.get $qh))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $iloop)))
        (i32.store offset=0
          (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2)))
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $a0)) (i32x4.extract_lane 1 (local.get $a0)))
            (i32.add (i32x4.extract_lane 2 (local.get $a0)) (i32x4.extract_lane 3 (local.get $a0)))))
        (i32.store offset=4
          (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2)))
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $a1)) (i32x4.extract_lane 1 (local.get $a1)))
            (i32.add (i32x4.extract_lane 2 (local.get $a1)) (i32x4.extract_lane 3 (local.get $a1)))))
        (i32.store offset=8
          (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2)))
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $a2)) (i32x4.extract_lane 1 (local.get $a2)))
            (i32.add (i32x4.extract_lane 2 (local.get $a2)) (i32x4.extract_lane 3 (local.get $a2)))))
        (i32.store offset=12
          (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2)))
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $a3)) (i32x4.extract_lane 1 (local.get $a3)))
            (i32.add (i32x4.extract_lane 2 (local.get $a3)) (i32x4.extract_lane 3 (local.get $a3)))))
        (i32.store offset=16
          (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2)))
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $a4)) (i32x4.extract_lane 1 (local.get $a4)))
            (i32.add (i32x4.extract_lane 2 (local.get $a4)) (i32x4.extract_lane 3 (local.get $a4)))))
        (i32.store offset=20
          (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2)))
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $a5)) (i32x4.extract_lane 1 (local.get $a5)))
            (i32.add (i32x4.extract_lane 2 (local.get $a5)) (i32x4.extract_lane 3 (local.get $a5)))))
        (local.set $row (i32.add (local.get $row) (i32.mul (local.get $stride) (i32.const 6))))
        (local.set $r (i32.add (local.get $r) (i32.const 6)))
        (br $rowloop)))
    (block $tdone
      (loop $tail
        (br_if $tdone (i32.ge_u (local.get $r) (local.get $count)))
        (i32.store (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2)))
          (call $one (local.get $query) (local.get $row) (local.get $stride)))
        (local.set $row (i32.add (local.get $row) (local.get $stride)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $tail))))
  ;; Quantization of one float32 vector, for an add: the largest magnitude, the sum of squares,
  ;; then the codes. In JavaScript the three loops over 1,536 values took ~16 µs an add on the
  ;; benchmark machine. `src` is 16-byte aligned and `n` a multiple of 16 (zero padded).
  (func (export "absmax") (param $src i32) (param $n i32) (result f32)
    (local $i i32) (local $m v128)
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        ;; f32x4.max gives NaN when either lane is NaN: a NaN in the vector is seen.
        (local.set $m (f32x4.max (local.get $m)
          (f32x4.abs (v128.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $loop)))
    (f32.max
      (f32.max (f32x4.extract_lane 0 (local.get $m)) (f32x4.extract_lane 1 (local.get $m)))
      (f32.max (f32x4.extract_lane 2 (local.get $m)) (f32x4.extract_lane 3 (local.get $m)))))
  (func (export "squares") (param $src i32) (param $n i32) (result f32)
    (local $i i32) (local $x v128) (local $s v128)
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $x (v128.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $s (f32x4.add (local.get $s) (f32x4.mul (local.get $x) (local.get $x))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $loop)))
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $s)) (f32x4.extract_lane 1 (local.get $s)))
      (f32.add (f32x4.extract_lane 2 (local.get $s)) (f32x4.extract_lane 3 (local.get $s)))))
  ;; dst[i] = round(src[i] * inverse) as int8 (ties to even), for i < n.
  (func (export "quantize") (param $src i32) (param $dst i32) (param $n i32) (param $inverse f32)
    (local $i i32) (local $p i32) (local $k v128)
    (local.set $k (f32x4.splat (local.get $inverse)))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $p (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2))))
        (v128.store (i32.add (local.get $dst) (local.get $i))
          (i8x16.narrow_i16x8_s
            (i16x8.narrow_i32x4_s
              (i32x4.trunc_sat_f32x4_s
                (f32x4.nearest (f32x4.mul (v128.load (local.get $p)) (local.get $k))))
              (i32x4.trunc_sat_f32x4_s
                (f32x4.nearest (f32x4.mul (v128.load offset=16 (local.get $p)) (local.get $k)))))
            (i16x8.narrow_i32x4_s
              (i32x4.trunc_sat_f32x4_s
                (f32x4.nearest (f32x4.mul (v128.load offset=32 (local.get $p)) (local.get $k))))
              (i32x4.trunc_sat_f32x4_s
                (f32x4.nearest (f32x4.mul (v128.load offset=48 (local.get $p)) (local.get $k)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $loop)))))
