"""The four examples of the seed document, "Updating Network Parameters" (r1.3).

Run: ``python -m spore.examples.seed_examples``. Each example prints what the
seed displays for it (examples 3 and 4 print every object the seed's listing
shows, not only the last statement's). On Linux numpy's default int is int64,
so ``Int64`` appears where the seed, written on Windows, shows ``Int32``.
"""

import numpy as np

from spore import Parameter, ParameterTuple, Tensor
from spore import dtype as mstype
from spore.common.initializer import initializer


def example_1_three_inputs() -> None:
    x = Parameter(default_input=Tensor(np.arange(2 * 3).reshape((2, 3))), name="x")
    y = Parameter(
        default_input=initializer("ones", [1, 2, 3], mstype.float32), name="y"
    )
    z = Parameter(default_input=2.0, name="z")
    print(x, "\n\n", y, "\n\n", z)


def example_2_attributes() -> None:
    x = Parameter(default_input=Tensor(np.arange(2 * 3).reshape((2, 3))))
    print(
        "name: ", x.name, "\n",
        "sliced: ", x.sliced, "\n",
        "is_init: ", x.is_init, "\n",
        "inited_param: ", x.inited_param, "\n",
        "requires_grad: ", x.requires_grad, "\n",
        "layerwise_parallel: ", x.layerwise_parallel, "\n",
        "data: ", x.data,
    )  # fmt: skip


def example_3_methods() -> None:
    x = Parameter(default_input=initializer("ones", [1, 2, 3], mstype.float32))
    x_clone = x.clone()
    x_clone.name = "x_clone"
    print(x)
    print(x_clone)
    print(x.init_data())
    print(x.set_data(data=Tensor(np.arange(2 * 3).reshape((1, 2, 3)))))


def example_4_parameter_tuple() -> None:
    x = Parameter(default_input=Tensor(np.arange(2 * 3).reshape((2, 3))), name="x")
    y = Parameter(
        default_input=initializer("ones", [1, 2, 3], mstype.float32), name="y"
    )
    z = Parameter(default_input=2.0, name="z")
    params = ParameterTuple((x, y, z))
    params_copy = params.clone("params_copy")
    print(params, "\n")
    print(params_copy)


def main() -> None:
    examples = (
        example_1_three_inputs,
        example_2_attributes,
        example_3_methods,
        example_4_parameter_tuple,
    )
    for number, example in enumerate(examples):
        if number:
            print()
        example()


if __name__ == "__main__":
    main()
