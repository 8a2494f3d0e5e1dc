"""Tests for format_tensor_repr: MindSpore's repr(Tensor) layout, rule by rule."""

from __future__ import annotations

import numpy as np

from spore.common._tensor_format import format_tensor_repr

F32 = np.float32


# --- recorded real-MindSpore outputs (diff case 036) ---


def test_case036_3d_int64() -> None:
    text = format_tensor_repr(np.arange(12, dtype=np.int64).reshape(2, 2, 3), "Int64")
    assert text == (
        "Tensor(shape=[2, 2, 3], dtype=Int64, value=\n"
        "[[[ 0,  1,  2],\n"
        "  [ 3,  4,  5]],\n"
        " [[ 6,  7,  8],\n"
        "  [ 9, 10, 11]]])"
    )


def test_case036_float16_vector() -> None:
    text = format_tensor_repr(np.array([0.5, -1.25], np.float16), "Float16")
    assert text == "Tensor(shape=[2], dtype=Float16, value= [ 5.0000e-01, -1.2500e+00])"


def test_case036_float64_vector() -> None:
    text = format_tensor_repr(np.array([0.25, 2.0], np.float64), "Float64")
    assert text == (
        "Tensor(shape=[2], dtype=Float64, value= [ 2.50000000e-01,  2.00000000e+00])"
    )


def test_case036_uint8_vector_right_aligned() -> None:
    text = format_tensor_repr(np.array([1, 255], np.uint8), "UInt8")
    assert text == "Tensor(shape=[2], dtype=UInt8, value= [  1, 255])"


# --- 0-d tensors ---


def test_scalar_float_is_shortest_g_format() -> None:
    assert format_tensor_repr(np.array(2.5, F32), "Float32") == (
        "Tensor(shape=[], dtype=Float32, value= 2.5)"
    )


def test_scalar_negative_zero() -> None:
    assert format_tensor_repr(np.array(-0.0, F32), "Float32").endswith("value= -0)")


def test_scalar_float_uses_six_significant_digits() -> None:
    # C++ ostream default: %g, precision 6.
    assert format_tensor_repr(np.array(1234567.0), "Float64").endswith("= 1.23457e+06)")


def test_scalar_bool() -> None:
    assert format_tensor_repr(np.array(True), "Bool") == (
        "Tensor(shape=[], dtype=Bool, value= True)"
    )


def test_scalar_int() -> None:
    assert format_tensor_repr(np.array(7), "Int64") == (
        "Tensor(shape=[], dtype=Int64, value= 7)"
    )


# --- element formats ---


def test_float32_vector_leading_space_for_non_negatives() -> None:
    text = format_tensor_repr(np.array([1.5, -2.0], F32), "Float32")
    assert text == (
        "Tensor(shape=[2], dtype=Float32, value= [ 1.50000000e+00, -2.00000000e+00])"
    )


def test_int_matrix_right_aligned_to_widest() -> None:
    text = format_tensor_repr(np.array([[1, -2], [30, 4]], np.int32), "Int32")
    assert text == "Tensor(shape=[2, 2], dtype=Int32, value=\n[[ 1, -2],\n [30,  4]])"


def test_bool_matrix_padded_to_five() -> None:
    text = format_tensor_repr(np.array([[True, False]]), "Bool")
    assert text == "Tensor(shape=[1, 2], dtype=Bool, value=\n[[ True, False]])"


def test_nan_and_inf_right_aligned_to_field_width() -> None:
    text = format_tensor_repr(np.array([np.nan, np.inf, -np.inf, 1.0], F32), "Float32")
    assert text.endswith(
        "value= [            nan,             inf,            -inf,  1.00000000e+00])"
    )


def test_nan_with_sign_bit_prints_minus_nan() -> None:
    # glibc prints the NaN sign bit; Python's % formatting would drop it.
    assert format_tensor_repr(np.array([-np.nan], F32), "Float32").endswith(
        "[           -nan])"
    )


def test_float16_nan_uses_width_eleven() -> None:
    text = format_tensor_repr(np.array([np.nan, 1.0], np.float16), "Float16")
    assert text.endswith("[        nan,  1.0000e+00])")


def test_three_digit_exponent_fills_the_field() -> None:
    text = format_tensor_repr(np.array([1e-300, 1.0]), "Float64")
    assert text.endswith("[1.00000000e-300,  1.00000000e+00])")


def test_bfloat16_is_g_format_right_aligned() -> None:
    # The C++ formatter treats bfloat16 like an integer type: %g, padded.
    text = format_tensor_repr(np.array([1.5, -2.0, 100000.0], F32), "BFloat16")
    assert text == "Tensor(shape=[3], dtype=BFloat16, value= [   1.5,     -2, 100000])"


def test_bfloat16_scalar() -> None:
    assert format_tensor_repr(np.array(0.5, F32), "BFloat16").endswith("value= 0.5)")


def test_complex_elements_real_then_signed_imag() -> None:
    values = np.array([1 + 2j, -1.5 - 0.5j], np.complex64)
    text = format_tensor_repr(values, "Complex64")
    assert text == "Tensor(shape=[2], dtype=Complex64, value= [1+2j, -1.5-0.5j])"


def test_complex_scalar_keeps_imaginary_sign() -> None:
    value = np.array(complex(3.0, -0.0))
    assert format_tensor_repr(value, "Complex128").endswith("value= 3-0j)")


# --- layout ---


def test_size_one_3d_has_newline_and_nested_brackets() -> None:
    text = format_tensor_repr(np.ones((1, 1, 1), F32), "Float32")
    assert text == (
        "Tensor(shape=[1, 1, 1], dtype=Float32, value=\n[[[ 1.00000000e+00]]])"
    )


def test_4d_indent_grows_one_space_per_level_without_blank_lines() -> None:
    text = format_tensor_repr(np.zeros((2, 1, 1, 1), np.int8), "Int8")
    assert text == (
        "Tensor(shape=[2, 1, 1, 1], dtype=Int8, value=\n[[[[0]]],\n [[[0]]]])"
    )


def test_1d_float_breaks_line_after_every_twelfth_element() -> None:
    text = format_tensor_repr(np.arange(13, dtype=F32), "Float32")
    assert text.endswith(" 1.10000000e+01, \n  1.20000000e+01])")


def test_1d_float_break_after_last_element_leaves_bracket_alone() -> None:
    text = format_tensor_repr(np.arange(12, dtype=F32), "Float32")
    assert text.endswith(" 1.10000000e+01\n ])")


def test_1d_int_breaks_line_after_every_24th_element() -> None:
    text = format_tensor_repr(np.arange(26, dtype=np.int32), "Int32")
    assert text.endswith("22, 23, \n 24, 25])")


def test_1d_bool_breaks_line_after_every_twelfth_element() -> None:
    text = format_tensor_repr(np.ones(13, bool), "Bool")
    assert text.endswith(" True, \n  True])")


def test_2d_rows_never_break() -> None:
    text = format_tensor_repr(np.zeros((1, 6), F32), "Float32")
    assert "\n" not in text.split("value=\n", 1)[1]


# --- summaries ---


def test_1d_over_1000_shows_three_each_end() -> None:
    text = format_tensor_repr(np.arange(2000, dtype=F32), "Float32")
    assert text == (
        "Tensor(shape=[2000], dtype=Float32, value= [ 0.00000000e+00,  1.00000000e+00, "
        " 2.00000000e+00 ...  1.99700000e+03,  1.99800000e+03,  1.99900000e+03])"
    )


def test_1d_of_exactly_1000_is_not_summarised() -> None:
    assert "..." not in format_tensor_repr(np.zeros(1000, np.int64), "Int64")


def test_2d_axes_longer_than_six_are_summarised() -> None:
    text = format_tensor_repr(np.arange(56, dtype=np.int64).reshape(8, 7), "Int64")
    assert text == (
        "Tensor(shape=[8, 7], dtype=Int64, value=\n"
        "[[ 0,  1,  2 ...  4,  5,  6],\n"
        " [ 7,  8,  9 ... 11, 12, 13],\n"
        " [14, 15, 16 ... 18, 19, 20],\n"
        " ...\n"
        " [35, 36, 37 ... 39, 40, 41],\n"
        " [42, 43, 44 ... 46, 47, 48],\n"
        " [49, 50, 51 ... 53, 54, 55]])"
    )


def test_int_width_counts_only_shown_elements() -> None:
    values = np.array([1, 2, 3, 100000, 4, 5, 6], np.int64)
    assert format_tensor_repr(values.reshape(1, 7), "Int64").endswith(
        "[[1, 2, 3 ... 4, 5, 6]])"
    )


def test_3d_middle_axis_summary_indents_ellipsis() -> None:
    text = format_tensor_repr(np.zeros((2, 7, 1), np.uint8), "UInt8")
    assert text == (
        "Tensor(shape=[2, 7, 1], dtype=UInt8, value=\n"
        "[[[0],\n  [0],\n  [0],\n  ...\n  [0],\n  [0],\n  [0]],\n"
        " [[0],\n  [0],\n  [0],\n  ...\n  [0],\n  [0],\n  [0]]])"
    )


def test_huge_tensor_formats_only_shown_elements() -> None:
    # A 10**12-element broadcast view: gathering everything would never finish.
    huge = np.broadcast_to(np.float32(1.5), (10**6, 10**6))
    text = format_tensor_repr(huge, "Float32")
    assert text.count("1.50000000e+00") == 36


# --- empty tensors ---


def test_empty_2d_prints_no_data() -> None:
    assert format_tensor_repr(np.zeros((2, 0), F32), "Float32") == (
        "Tensor(shape=[2, 0], dtype=Float32, value=\n)"
    )


def test_empty_1d_prints_no_data() -> None:
    assert format_tensor_repr(np.zeros((0,), F32), "Float32") == (
        "Tensor(shape=[0], dtype=Float32, value= )"
    )
