"""Tests for nano_forkrl/assignment/markers.py: the markers accepted and refused, and the blanking."""
import ast
import textwrap

import pytest

from nano_forkrl.assignment.markers import MarkerError, blank, regions

GOOD = '''\
import torch


def token_entropy(logits):
    """H = -sum p log p."""
    # BEGIN SOLUTION entropy
    logp = torch.log_softmax(logits, -1)
    return -(logp.exp() * logp).sum(-1)
    # END SOLUTION


class Loss:
    def __call__(self, x, y):
        """A method: its region is indented twice."""
        if x is None:
            raise ValueError("x")
        # BEGIN SOLUTION loss
        z = (x -
             y)
        return z.abs()
        # END SOLUTION
'''


def parse(text, name="mod.py"):
    return regions(name, textwrap.dedent(text))


def test_good_regions_name_part_lines_and_function():
    assert regions("mod.py", GOOD) == [("entropy", 6, 9, "token_entropy"), ("loss", 17, 21, "__call__")]


def test_blank_keeps_signature_docstring_and_indentation():
    student, removed = blank(GOOD, regions("mod.py", GOOD), {"entropy", "loss"})
    lines = student.splitlines()
    assert lines[5] == '    raise NotImplementedError("entropy: see tutorials/05_entropy.ipynb")'
    assert lines[-1] == '        raise NotImplementedError("loss: see tutorials/07_update.ipynb")'
    assert '    """H = -sum p log p."""' in lines and '            raise ValueError("x")' in lines
    assert removed == ["logp = torch.log_softmax(logits, -1)", "return -(logp.exp() * logp).sum(-1)",
                       "z = (x -", "y)", "return z.abs()"]
    assert "SOLUTION" not in student
    ast.parse(student)


def test_parts_not_chosen_keep_their_code_without_markers():
    student, removed = blank(GOOD, regions("mod.py", GOOD), {"loss"})
    assert "    return -(logp.exp() * logp).sum(-1)\n" in student and "SOLUTION" not in student
    assert removed == ["z = (x -", "y)", "return z.abs()"]
    assert student.count("raise NotImplementedError") == 1


def test_marker_text_inside_a_string_is_no_marker():
    assert parse('''
        def f():
            """Usage:
            # BEGIN SOLUTION nonsense
            """
            return 1
    ''') == []


BAD = {
    "unbalanced": ("""
        def f():
            # BEGIN SOLUTION entropy
            return 1
    """, 3, "has no END SOLUTION"),
    "end without begin": ("""
        def f():
            return 1
            # END SOLUTION
    """, 4, "without a BEGIN"),
    "nested": ("""
        def f():
            # BEGIN SOLUTION entropy
            # BEGIN SOLUTION loss
            return 1
            # END SOLUTION
            # END SOLUTION
    """, 4, "nested"),
    "outside a function": ("""
        # BEGIN SOLUTION entropy
        X = 1
        # END SOLUTION
    """, 2, "outside a function"),
    "unknown part": ("""
        def f():
            # BEGIN SOLUTION entropie
            return 1
            # END SOLUTION
    """, 3, "unknown part 'entropie'"),
    "no part": ("""
        def f():
            # BEGIN SOLUTION
            return 1
            # END SOLUTION
    """, 3, "exactly"),
    "lower case": ("""
        def f():
            # begin solution entropy
            return 1
            # END SOLUTION
    """, 3, "exactly"),
    "text after END": ("""
        def f():
            # BEGIN SOLUTION entropy
            return 1
            # END SOLUTION entropy
    """, 5, "exactly"),
    "after code": ("""
        def f():
            x = 1  # BEGIN SOLUTION entropy
            return x
            # END SOLUTION
    """, 3, "lines of their own"),
    "indented unlike its BEGIN": ("""
        def f():
            # BEGIN SOLUTION entropy
            return 1
        # END SOLUTION
    """, 5, "indented unlike"),
    "splits a statement": ("""
        def f(a):
            y = g(a,
                  # BEGIN SOLUTION entropy
                  a)
            return y
            # END SOLUTION
    """, 4, "splits a statement"),
    "ends inside a block": ("""
        def f(x):
            # BEGIN SOLUTION entropy
            if x:
                a = 1
            # END SOLUTION
                return a
    """, 3, "splits a statement of f"),
    "inside a block": ("""
        def f(x):
            if x:
                # BEGIN SOLUTION entropy
                return 1
                # END SOLUTION
    """, 4, "indented like the statements of f's body"),
    "empty": ("""
        def f(x):
            # BEGIN SOLUTION entropy
            # END SOLUTION
            return 1
    """, 3, "holds no statement"),
    "after the last statement": ("""
        def f(x):
            return 1
            # BEGIN SOLUTION entropy
            # END SOLUTION
    """, 4, "outside a function"),
    "holds the docstring": ('''
        def f():
            # BEGIN SOLUTION entropy
            """doc"""
            return 1
            # END SOLUTION
    ''', 3, "docstring"),
    "reaches past the function": ("""
        def f():
            # BEGIN SOLUTION entropy
            return 1
        X = 2
            # END SOLUTION
    """, 5, "outside the body of f"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_refused_markers_name_file_and_line(case):
    text, line, message = BAD[case]
    with pytest.raises(MarkerError) as err:
        parse(text, "pkg/mod.py")
    assert str(err.value).startswith(f"pkg/mod.py:{line}: ") and message in str(err.value), str(err.value)
