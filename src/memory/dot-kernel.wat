;; The scan at the heart of memory search: the integer dot product of one int8 query with every
;; stored int8 row. Each step widens 16 bytes of both to two i16x8 halves and multiplies them with
;; i32x4.dot_i16x8_s (pmaddwd on x86), which sums adjacent pairs into i32 lanes. No sum can
;; overflow: a product is at most 128 * 128 = 2^14, so even the total of a row is exact up to
;; 2^31 / 2^14 = 131,072 bytes per row, far beyond any embedding.
;; `npm run build:kernel` compiles this file into dot-kernel.ts.
(module
  (memory (export "memory") 1)
  ;; out[r] = dot(query, rows[r]) for r < count, as an i32 at out + 4r. `stride` is bytes per
  ;; row, a multiple of 16; query, rows and out are byte offsets, 16-byte aligned.
  (func (export "scores")
    (param $query i32) (param $rows i32) (param $count i32) (param $stride i32) (param $out i32)
    (local $r i32) (local $i i32) (local $row i32) (local $pairs i32)
    (local $x v128) (local $y v128) (local $z v128) (local $w v128)
    (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    ;; The inner loop takes 32 bytes a step (four accumulators, so the additions do not wait on
    ;; each other); a stride that is an odd multiple of 16 leaves one 16-byte step after it.
    (local.set $pairs (i32.and (local.get $stride) (i32.const -32)))
    (local.set $row (local.get $rows))
    (block $done
      (loop $rowloop
        (br_if $done (i32.ge_u (local.get $r) (local.get $count)))
        (local.set $a (v128.const i32x4 0 0 0 0))
        (local.set $b (v128.const i32x4 0 0 0 0))
        (local.set $c (v128.const i32x4 0 0 0 0))
        (local.set $d (v128.const i32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (block $idone
          (loop $iloop
            (br_if $idone (i32.ge_u (local.get $i) (local.get $pairs)))
            (local.set $x (v128.load (i32.add (local.get $row) (local.get $i))))
            (local.set $y (v128.load (i32.add (local.get $query) (local.get $i))))
            (local.set $z (v128.load offset=16 (i32.add (local.get $row) (local.get $i))))
            (local.set $w (v128.load offset=16 (i32.add (local.get $query) (local.get $i))))
            (local.set $a (i32x4.add (local.get $a) (i32x4.dot_i16x8_s
              (i16x8.extend_low_i8x16_s (local.get $x))
              (i16x8.extend_low_i8x16_s (local.get $y)))))
            (local.set $b (i32x4.add (local.get $b) (i32x4.dot_i16x8_s
              (i16x8.extend_high_i8x16_s (local.get $x))
              (i16x8.extend_high_i8x16_s (local.get $y)))))
            (local.set $c (i32x4.add (local.get $c) (i32x4.dot_i16x8_s
              (i16x8.extend_low_i8x16_s (local.get $z))
              (i16x8.extend_low_i8x16_s (local.get $w)))))
            (local.set $d (i32x4.add (local.get $d) (i32x4.dot_i16x8_s
              (i16x8.extend_high_i8x16_s (local.get $z))
              (i16x8.extend_high_i8x16_s (local.get $w)))))
            (local.set $i (i32.add (local.get $i) (i32.const 32)))
            (br $iloop)))
        (if (i32.lt_u (local.get $i) (local.get $stride))
          (then
            (local.set $x (v128.load (i32.add (local.get $row) (local.get $i))))
            (local.set $y (v128.load (i32.add (local.get $query) (local.get $i))))
            (local.set $a (i32x4.add (local.get $a) (i32x4.dot_i16x8_s
              (i16x8.extend_low_i8x16_s (local.get $x))
              (i16x8.extend_low_i8x16_s (local.get $y)))))
            (local.set $b (i32x4.add (local.get $b) (i32x4.dot_i16x8_s
              (i16x8.extend_high_i8x16_s (local.get $x))
              (i16x8.extend_high_i8x16_s (local.get $y)))))))
        (local.set $a (i32x4.add
          (i32x4.add (local.get $a) (local.get $b))
          (i32x4.add (local.get $c) (local.get $d))))
        (i32.store
          (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2)))
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $a)) (i32x4.extract_lane 1 (local.get $a)))
            (i32.add (i32x4.extract_lane 2 (local.get $a)) (i32x4.extract_lane 3 (local.get $a)))))
        (local.set $row (i32.add (local.get $row) (local.get $stride)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rowloop)))))
