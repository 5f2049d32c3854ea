"""``python3 -m spark_mesos_worker``: a worker offering only the built-in functions
(``python.cloudpickle``): closures shipped from the driver need nothing else."""

from . import Worker


def main() -> None:
    Worker("python").run()


if __name__ == "__main__":
    main()
