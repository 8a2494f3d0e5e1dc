"""The four examples of the seed page "Updating Network Parameters" (MindSpore r1.3),
run verbatim with ``mindspore`` imports mapped to ``spore``.

Expected text is the seed's listing, with ``Int64`` where the seed (run on Windows)
shows ``Int32`` for ``np.arange``. The seed page drops the spaces ``print`` puts
around its ``"\\n"`` arguments, so the expected text is joined the way ``print`` joins
it. For examples 3 and 4 the listing shows more lines than the code prints: the
verbatim tests compare what the code prints; extra tests print every listed object.
"""

from __future__ import annotations

import pytest


def _run(source: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()  # drop anything printed before
    code = source.replace("from mindspore", "from spore")
    exec(compile(code, "<seed example>", "exec"), {"__name__": "__seed_example__"})
    return capsys.readouterr().out


X_LINE = "Parameter (name=x, shape=(2, 3), dtype=Int64, requires_grad=True)"
Y_LINE = "Parameter (name=y, shape=(1, 2, 3), dtype=Float32, requires_grad=True)"
Z_LINE = "Parameter (name=z, shape=(), dtype=Float32, requires_grad=True)"
UNNAMED_LINE = (
    "Parameter (name=Parameter, shape=(1, 2, 3), dtype=Float32, requires_grad=True)"
)

EXAMPLE_1 = """
import numpy as np
from mindspore import Tensor, Parameter
from mindspore import dtype as mstype
from mindspore.common.initializer import initializer

x = Parameter(default_input=Tensor(np.arange(2*3).reshape((2, 3))), name='x')
y = Parameter(default_input=initializer('ones', [1, 2, 3], mstype.float32), name='y')
z = Parameter(default_input=2.0, name='z')

print(x, "\\n\\n", y, "\\n\\n", z)
"""


def test_example_1_three_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    expected = " \n\n ".join([X_LINE, Y_LINE, Z_LINE]) + "\n"
    assert _run(EXAMPLE_1, capsys) == expected


EXAMPLE_2 = """
import numpy as np

from mindspore import Tensor, Parameter

x = Parameter(default_input=Tensor(np.arange(2*3).reshape((2, 3))))

print("name: ", x.name, "\\n",
      "sliced: ", x.sliced, "\\n",
      "is_init: ", x.is_init, "\\n",
      "inited_param: ", x.inited_param, "\\n",
      "requires_grad: ", x.requires_grad, "\\n",
      "layerwise_parallel: ", x.layerwise_parallel, "\\n",
      "data: ", x.data)
"""

EXAMPLE_2_LINES = [
    "name:  Parameter",
    "sliced:  False",
    "is_init:  False",
    "inited_param:  None",
    "requires_grad:  True",
    "layerwise_parallel:  False",
    "data:  Parameter (name=Parameter, shape=(2, 3), dtype=Int64, requires_grad=True)",
]


def test_example_2_attributes(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(EXAMPLE_2, capsys) == " \n ".join(EXAMPLE_2_LINES) + "\n"


EXAMPLE_3 = """
import numpy as np

from mindspore import Tensor, Parameter
from mindspore import dtype as mstype
from mindspore.common.initializer import initializer

x = Parameter(default_input=initializer('ones', [1, 2, 3], mstype.float32))


x_clone = x.clone()
x_clone.name = "x_clone"

print(x.set_data(data=Tensor(np.arange(2*3).reshape((1, 2, 3)))))
"""

# The seed's four-line listing for example 3.
EXAMPLE_3_LISTING = [
    UNNAMED_LINE,
    "Parameter (name=x_clone, shape=(1, 2, 3), dtype=Float32, requires_grad=True)",
    UNNAMED_LINE,
    UNNAMED_LINE,
]


def test_example_3_prints_the_set_data_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _run(EXAMPLE_3, capsys) == EXAMPLE_3_LISTING[-1] + "\n"


def test_example_3_every_listed_object(capsys: pytest.CaptureFixture[str]) -> None:
    source = EXAMPLE_3.replace(
        "print(x.set_data(",
        "print(x)\nprint(x_clone)\nprint(x.init_data())\nprint(x.set_data(",
    )
    assert _run(source, capsys) == "\n".join(EXAMPLE_3_LISTING) + "\n"


def test_example_3_values(capsys: pytest.CaptureFixture[str]) -> None:
    source = (
        EXAMPLE_3 + "print(x.asnumpy().tolist())\nprint(x_clone.asnumpy().tolist())\n"
    )
    out = _run(source, capsys).splitlines()
    assert out[1:] == [
        "[[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]]",
        "[[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]]",
    ]


EXAMPLE_4 = """
import numpy as np
from mindspore import Tensor, Parameter, ParameterTuple
from mindspore import dtype as mstype
from mindspore.common.initializer import initializer

x = Parameter(default_input=Tensor(np.arange(2*3).reshape((2, 3))), name='x')
y = Parameter(default_input=initializer('ones', [1, 2, 3], mstype.float32), name='y')
z = Parameter(default_input=2.0, name='z')
params = ParameterTuple((x, y, z))
params_copy = params.clone("params_copy")
print(params, "\\n")
"""

EXAMPLE_4_LISTING = [
    f"({X_LINE}, {Y_LINE}, {Z_LINE})",
    "(Parameter (name=params_copy.x, shape=(2, 3), dtype=Int64, requires_grad=True), "
    "Parameter (name=params_copy.y, shape=(1, 2, 3), dtype=Float32, "
    "requires_grad=True), "
    "Parameter (name=params_copy.z, shape=(), dtype=Float32, requires_grad=True))",
]


def test_example_4_prints_the_tuple(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(EXAMPLE_4, capsys) == EXAMPLE_4_LISTING[0] + " \n\n"


def test_example_4_with_the_cloned_tuple(capsys: pytest.CaptureFixture[str]) -> None:
    source = EXAMPLE_4.replace(
        'print(params, "\\n")', "print(params)\nprint(params_copy)"
    )
    assert _run(source, capsys) == "\n".join(EXAMPLE_4_LISTING) + "\n"
