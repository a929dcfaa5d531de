# FakeData: random images for smoke tests, each drawn from a generator seeded with its index so
# that an index always gives the same image and target, whatever was drawn before.
import numpy as np

import rustgrad as _rg

from ..transforms import functional as F
from .vision import VisionDataset


class FakeData(VisionDataset):
    def __init__(self, size=1000, image_size=(3, 224, 224), num_classes=10, transform=None, target_transform=None,
                 random_offset=0):
        super().__init__(transform=transform, target_transform=target_transform)
        self.size = size
        self.num_classes = num_classes
        self.image_size = image_size
        self.random_offset = random_offset

    def __getitem__(self, index):
        if index >= len(self):
            raise IndexError(f"{self.__class__.__name__} index out of range")
        # Seeded per index, and the caller's generator state is put back afterwards.
        state = _rg.get_rng_state()
        _rg.manual_seed(index + self.random_offset)
        img = _rg.randn(*self.image_size)
        target = _rg.randint(0, self.num_classes, size=(1,), dtype=_rg.long)[0]
        _rg.set_rng_state(state)
        img = _to_image(img)
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target.item() if isinstance(target, _rg.Tensor) else target

    def __len__(self):
        return self.size


def _to_image(img):
    # What ToPILImage makes of a float CHW tensor: value * 255 cast to uint8 (wrapping, as torchvision's
    # own FakeData does with its normal draws); the HWC array itself when Pillow is absent.
    if F._Image is not None:
        return F.to_pil_image(img)
    array = img.permute(1, 2, 0).numpy() if img.ndim == 3 else img.numpy()
    array = (array * 255).astype(np.uint8)
    return np.ascontiguousarray(array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array)
