"""DomainBed's image transforms for the 224x224 datasets.

The transform of an environment is chosen once, before its in/out split (DomainBed's rule), so
with ``data_augmentation`` the out split of a training environment is augmented too and
training-domain validation sees augmented images, as in DomainBed's published numbers.
"""

from __future__ import annotations

from torchvision import transforms

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SIZE = 224


def eval_transform() -> transforms.Compose:
    """Resize to 224x224 (aspect ratio not kept, as in DomainBed) and normalise."""
    return transforms.Compose([
        transforms.Resize((IMAGE_SIZE, IMAGE_SIZE)),
        transforms.ToTensor(),
        transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ])


def train_transform() -> transforms.Compose:
    """DomainBed's training augmentation, then the same normalisation as at evaluation."""
    return transforms.Compose([
        transforms.RandomResizedCrop(IMAGE_SIZE, scale=(0.7, 1.0)),
        transforms.RandomHorizontalFlip(),
        transforms.ColorJitter(0.3, 0.3, 0.3, 0.3),
        transforms.RandomGrayscale(),  # p=0.1, torchvision's default, as DomainBed uses it
        transforms.ToTensor(),
        transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ])


def env_transforms(num_envs: int, test_envs, augment: bool) -> list[transforms.Compose]:
    """The transform of each environment: augmented for training envs when ``augment``.

    Test environments always get the evaluation transform.
    """
    test = set(test_envs)
    return [train_transform() if augment and i not in test else eval_transform()
            for i in range(num_envs)]
