"""File readers; importing this package registers them with ``zspace.data.sources``.

Registration order is the order in which a bare path is guessed: the specific
layouts first (IDX, CIFAR-10, CelebA), any folder or zip of images last.
"""

from zspace.data.arrays import IMAGES, read_npy
from zspace.data.readers.celeba import guess_celeba, read_celeba
from zspace.data.readers.cifar import guess_cifar10, read_cifar10
from zspace.data.readers.folder import guess_folder, read_folder
from zspace.data.readers.idx import guess_idx, read_idx_source
from zspace.data.sources import register_reader

register_reader(
    "npy",
    read_npy,
    guess=lambda p: p.suffix == ".npy" or (p / IMAGES).is_file(),
    description="uint8 images in a .npy file, or a folder with images.npy (+ labels.npy)",
)
register_reader(
    "mnist",
    read_idx_source,
    guess=guess_idx,
    description="IDX files (MNIST, Fashion-MNIST, KMNIST, ...): a folder or one images file",
)
register_reader(
    "cifar10",
    read_cifar10,
    guess=guess_cifar10,
    description="CIFAR-10 python batches: cifar-10-batches-py/ or cifar-10-python.tar.gz",
)
register_reader(
    "celeba",
    read_celeba,
    guess=guess_celeba,
    description="CelebA aligned: img_align_celeba/ or img_align_celeba.zip (+ attributes)",
)
register_reader(
    "folder",
    read_folder,
    guess=guess_folder,
    description="any folder (recursive) or zip of images; sub-folders are class labels",
)
