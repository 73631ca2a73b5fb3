"""Example photos (generator.photos): loading, bad files, discovery, and the cheap folder check."""

import numpy as np
import pytest
from PIL import Image

from generator.errors import UserError
from generator.photos import (
    builtin_photos,
    RESIZE_MODE,
    UnreadablePhoto,
    check_images_dir,
    discover_photos,
    load_photo,
)
from photo_files import bad_files, save, stripes

RED, GREEN, BLUE = (230, 40, 40), (40, 200, 60), (40, 40, 230)


# --- loading ------------------------------------------------------------------------------------


def test_wide_photo_is_center_cropped_after_short_side_resize(tmp_path):
    path = save(tmp_path, "wide.png", stripes(20, 60, [RED, GREEN, BLUE]))
    photo = load_photo(path, size=32)
    assert photo.shape == (32, 32, 3) and photo.dtype == np.uint8
    np.testing.assert_allclose(photo.reshape(-1, 3).mean(axis=0), GREEN, atol=1)  # only the middle third
    assert "center crop" in RESIZE_MODE


def test_tall_photo_keeps_its_middle(tmp_path):
    tall = np.transpose(stripes(20, 90, [RED, GREEN, BLUE]), (1, 0, 2))  # 90 high, 20 wide
    photo = load_photo(save(tmp_path, "tall.png", tall), size=16)
    np.testing.assert_allclose(photo.reshape(-1, 3).mean(axis=0), GREEN, atol=1)


def test_exif_orientation_is_applied(tmp_path):
    """Stored 60x40 with red left, blue right, EXIF 6 (rotate 90 clockwise): red ends on top."""
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(tmp_path, "rotated.jpg", stripes(40, 60, [RED, BLUE]), exif=exif, quality=95)
    photo = load_photo(path, size=32).astype(int)
    assert photo[2, 16, 0] > 150 and photo[2, 16, 2] < 100  # top: red
    assert photo[29, 16, 2] > 150 and photo[29, 16, 0] < 100  # bottom: blue


def test_grayscale_becomes_equal_channels(tmp_path):
    gray = np.tile(np.arange(0, 250, 5, dtype=np.uint8), (50, 1))
    photo = load_photo(save(tmp_path, "gray.png", gray, "L"), size=32)
    assert (photo[..., 0] == photo[..., 1]).all() and (photo[..., 1] == photo[..., 2]).all()
    assert photo[..., 0].min() < 40 and photo[..., 0].max() > 210


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent except the left half
    rgba[:, :20, 3] = 255
    photo = load_photo(save(tmp_path, "alpha.png", rgba, "RGBA"), size=40).astype(int)
    np.testing.assert_array_equal(photo[20, 5], [255, 0, 0])
    np.testing.assert_array_equal(photo[20, 35], [255, 255, 255])


def test_palette_with_transparency_is_composited_over_white(tmp_path):
    palette_image = Image.new("P", (30, 30), 0)
    palette_image.putpalette([0, 0, 255] + [0, 0, 0] * 255)
    palette_image.info["transparency"] = 0
    path = tmp_path / "palette.png"
    palette_image.save(path, transparency=0)
    np.testing.assert_array_equal(load_photo(path, size=30)[10, 10], [255, 255, 255])


def test_cmyk_jpeg_is_converted(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (40, 40), (0, 255, 255, 0)).save(path, quality=95)  # pure red in CMYK
    pixel = load_photo(path, size=32)[16, 16].astype(int)
    assert pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


def test_sixteen_bit_gray_is_scaled_to_eight_bits(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    assert (load_photo(path, size=32) == 255).all()


def test_webp_loads(tmp_path):
    path = save(tmp_path, "photo.webp", stripes(40, 40, [GREEN]), lossless=True)
    np.testing.assert_array_equal(load_photo(path, size=32)[0, 0], GREEN)


def test_unusable_files_raise_unreadable_photo_with_a_reason(tmp_path):
    expected = bad_files(tmp_path)
    for name, words in expected.items():
        with pytest.raises(UnreadablePhoto, match=words):
            load_photo(tmp_path / name)


def test_builtin_photos_ship_with_credits_and_load():
    assert len(builtin_photos()) == 6
    assert len({photo.slug for photo in builtin_photos()}) == 6
    for photo in builtin_photos():
        assert photo.path.is_file(), photo.path
        assert photo.source and photo.licence and photo.title
    chelsea = load_photo(builtin_photos()[0].path)
    assert builtin_photos()[0].slug == "chelsea" and chelsea.shape == (224, 224, 3)
    assert "CC0" in builtin_photos()[0].licence and "van der Walt" in builtin_photos()[0].source


# --- discovery ----------------------------------------------------------------------------------


def test_discovery_is_recursive_sorted_and_slugs_are_unique(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("Chelsea.JPG", "b/My Photo.png", "c.webp", "skip.txt", "b/c.webp"):
        (tmp_path / name).write_bytes(b"x")
    photos = discover_photos(tmp_path, taken=["chelsea"])
    assert [p.path.relative_to(tmp_path).as_posix() for p in photos] == ["Chelsea.JPG", "b/My Photo.png", "b/c.webp",
                                                                          "c.webp"]
    assert [p.slug for p in photos] == ["chelsea-2", "b-my-photo", "b-c", "c"]
    assert photos[0].title == "Chelsea" and photos[0].licence == "supplied by the user"


@pytest.mark.parametrize("setup, words", [
    (lambda folder: folder / "missing", "does not exist"),
    (lambda folder: folder, "holds no .jpg, .png or .webp files"),
    (lambda folder: (folder / "a.txt").write_text("x") and folder, "holds no .jpg"),
    (lambda folder: (folder / "file.png").write_bytes(b"x") and folder / "file.png", "is not a folder"),
])
def test_missing_or_empty_folder_is_one_user_error(tmp_path, setup, words):
    with pytest.raises(UserError, match=words) as error:
        discover_photos(setup(tmp_path))
    assert "\n" not in str(error.value)


# --- the cheap check of an --images folder, before any drawing ---------------------------------


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail any pixel decoding: the folder check must read headers only."""
    from PIL import ImageFile

    def refuse(self):
        raise AssertionError(f"decoded {self.filename}")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_a_folder_of_only_unusable_files_is_refused_in_one_line_without_decoding(tmp_path, no_decoding):
    reasons = bad_files(tmp_path)
    (tmp_path / "cut.jpg").unlink()  # a JPEG cut short has a sound header: only decoding finds it (below)
    with pytest.raises(UserError, match="none of its 6 photo files can be read") as error:
        check_images_dir(tmp_path)
    assert "\n" not in str(error.value) and reasons["animation.png"] in str(error.value)  # the first, by name


def test_a_folder_with_one_usable_photo_passes_the_check_without_decoding(tmp_path, no_decoding):
    bad_files(tmp_path)
    save(tmp_path, "zz-good.png", stripes(20, 20, [RED]))
    assert check_images_dir(tmp_path) is None


def test_a_jpeg_cut_short_passes_the_header_check_and_fails_loading(tmp_path):
    bad_files(tmp_path)
    check_images_dir(tmp_path)  # cut.jpg: header fine
    with pytest.raises(UnreadablePhoto, match="truncated"):
        load_photo(tmp_path / "cut.jpg")


@pytest.mark.parametrize("setup, words", [
    (lambda folder: folder / "missing", "does not exist"),
    (lambda folder: folder, "holds no .jpg, .png or .webp files"),
])
def test_the_check_refuses_missing_and_empty_folders(tmp_path, setup, words):
    with pytest.raises(UserError, match=words):
        check_images_dir(setup(tmp_path))
