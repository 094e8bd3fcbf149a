"""Tests for nano_forkrl.verifier.latex: canonical strings and structures; look-alike and invisible characters."""
import pytest

from nano_forkrl.verifier.latex import closing, normalize, plain, split_top, structure


@pytest.mark.parametrize("raw, canonical", [
    (r"\dfrac{1}{2}", r"\frac{1}{2}"),
    (r"\tfrac{1}{2}", r"\frac{1}{2}"),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})"),
    (r"5\text{ cm}", "5"),
    (r"15\mbox{ cm}^2", "15"),
    (r"5.4 \text{ cents}", "5.4"),
    (r"\frac{270}7\text{ degrees}", r"\frac{270}7"),
    (r"90^\circ", "90"),
    (r"90^{\circ}", "90"),
    (r"10\%", "10"),
    (r"\$18.90", "18.90"),
    ("$x$", "x"),
    ("1,000", "1000"),
    ("-1,234,567.5", "-1234567.5"),
    (r"10,\!080", "10080"),
    (r"11,\! 111,\! 111,\! 100", "11111111100"),
    ("1,2", "1,2"),  # a list, not a thousand
    ("1,23", "1,23"),
    ("x = 5", "5"),
    (r"f(x) = 2x", "2x"),
    (r"x \in [-2,7]", "[-2,7]"),
    (r"5x - 7y + 11z + 4 = 0", "5x-7y+11z+4=0"),  # not a short "x =" prefix: kept
    ("(B)", "B"),
    (r"\text{(C)}", "C"),
    (r"\text{East}", "east"),
    (r"\cot x", r"\cot x"),  # the space that ends a command stays
    (r"1 \pm \sqrt{19}", r"1\pm\sqrt{19}"),
    (r"1 \mp 2", r"1\pm2"),
    (r"4210_{5}", "4210_5"),
    (r"137 \frac{1}{2}", r"(137+\frac{1}{2})"),
    (r"1\frac45", r"(1+\frac45)"),
    (r"2 \text{ and } 3", "2,3"),
    ("5.", "5"),
    ("3.83e35", r"3.83\times10^{35}"),
    ("-2e-5", r"-2\times10^{-5}"),
    (r"\(5\)", "5"),  # math delimiters around the whole answer
    (r"a\ b", "ab"),
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\begin{pmatrix}1\\2\end{pmatrix}"),
    (r"\[ \frac{2}{7}. \]", r"\frac{2}{7}"),  # display-math delimiters and the sentence's period
    (r"\( (4, -9) \)", "(4,-9)"),
    (r"\boxed{\frac{3}{11}}", r"\frac{3}{11}"),
    (r"\boxed{1}+\boxed{2}", r"\boxed{1}+\boxed{2}"),  # not one box around everything
    (r"\(5\) and \(6\)", "(5),(6)"),  # two inline formulas: not one delimited answer
    (r"\frac{7}{8},", r"\frac{7}{8}"),
    ("2,4,6,...", "2,4,6,..."),  # an ellipsis is not punctuation
    (r"\\dfrac{5}{6}", r"\frac{5}{6}"),  # an escaped backslash before a command
    (r"\cfrac{2}{9}", r"\frac{2}{9}"),
    (r"48\textnormal{ feet}", "48"),
    ("27{, }315", "27315"),
    ("27, 315", "27,315"),  # a comma and a space separate two answers
    ("0,375", "0,375"),  # no thousand starts with a lone 0
    (r"y \geq 3", "y>=3"),
    (r"a \leqslant b", "a<=b"),
    (r"t \ne 1", "t≠1"),
    (r"\left( 1, 2 \right)", "(1,2)"),  # \left is not \le
    ("(a,b)=(6,-1)", "(6,-1)"),
    ("t=3, t=-8", "3,-8"),  # the values of one variable
    ("t=3, s=-8", "t=3,s=-8"),  # different labels stay
    ("2; 7", "2,7"),
    ("(3,1)or(1,3)", "(3,1),(1,3)"),
    ("{5, 8}", "5,8"),  # a bare brace group is invisible in LaTeX
    ("6 2/7", r"(6+\frac{2}{7})"),
    ("-6 2/7", r"-(6+\frac{2}{7})"),
    (r"-3\frac{1}{4}", r"-(3+\frac{1}{4})"),
])
def test_normalize(raw, canonical):
    assert normalize(raw) == canonical


def test_closing_and_split_top():
    assert closing("{a{b}c}d", 0) == 6
    assert closing("{a{b}", 0) == -1
    assert closing("(0,1]", 0, "([", ")]") == 4
    assert split_top("1,(2,3),\\{4,5\\}", ",") == ["1", "(2,3)", "\\{4,5\\}"]
    assert split_top(r"(0,1)\cup(2,3)", r"\cup") == ["(0,1)", "(2,3)"]
    assert split_top(r"1&2\\3&4", "\\\\") == ["1&2", "3&4"]


@pytest.mark.parametrize("s, expected", [
    ("5", ("scalar", "", ["5"])),
    ("(1,2)", ("tuple", "()", ["1", "2"])),
    ("(0,1]", ("tuple", "(]", ["0", "1"])),
    ("[a,b)", ("tuple", "[)", ["a", "b"])),
    ("(a+5)(b+2)", ("scalar", "", ["(a+5)(b+2)"])),  # a product, not a tuple
    ("(5)", ("scalar", "", ["(5)"])),
    (r"\{1,2\}", ("set", "", ["1", "2"])),
    ("1,2,3", ("set", "", ["1", "2", "3"])),
    (r"1\pm\sqrt{5}", ("set", "", [r"1+\sqrt{5}", r"1-\sqrt{5}"])),
    (r"\{1\pm\sqrt{5},-2\}", ("set", "", [r"1+\sqrt{5}", r"1-\sqrt{5}", "-2"])),
    (r"(-\infty,2)\cup(3,\infty)", ("union", "", [r"(-\infty,2)", r"(3,\infty)"])),
    (r"\begin{pmatrix}1\\2\end{pmatrix}", ("tuple", "()", ["1", "2"])),  # column vector
    (r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", ("tuple", "2x2,2", ["1", "2", "3", "4"])),
    (r"\begin{bmatrix}1&2&3\end{bmatrix}", ("tuple", "1x3", ["1", "2", "3"])),
    (r"[\begin{array}{cc}5&6\\7&8\end{array}]", ("tuple", "2x2,2", ["5", "6", "7", "8"])),  # \left[ matrix \right]
])
def test_structure(s, expected):
    assert structure(s) == expected


def test_plain_reads_look_alike_minus_signs_and_drops_invisible_characters():
    minuses = "\u2212\u2010\u2011\u2012\u2013\u2014\u2015\ufe63\uff0d"
    assert plain(minuses) == "-" * len(minuses)
    invisible = ("\x00\u00ad\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067"
                 "\u2068\u2069\ufeff")
    assert plain(f"1{invisible}2") == "12"
    kept = "x = \\frac{1}{2} \u2260 \u03c0 \u2264 \u00e9 \u00a0 \u2028 \u00d7 ~ \\$ %"  # only those: the rest stays
    assert plain(kept) == kept
