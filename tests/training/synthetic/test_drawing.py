import random

from PIL import Image

from training.synthetic.drawing import SIZE, catalog_shot, draw_pack, nearest_colour, photo
from training.synthetic.fonts import BUILTIN, faces, font
from training.synthetic.products import sample_product
from workers.backends.ocr import dominant_colours


def _inside(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    return (
        inner[0] >= outer[0] - 2
        and inner[1] >= outer[1] - 2
        and inner[2] <= outer[2] + 2
        and inner[3] <= outer[3] + 2
    )


def test_fonts_resolve_to_truetype_faces_or_the_builtin() -> None:
    found = faces()
    assert found
    assert font(found[0], 30) is font(found[0], 30)
    assert font(BUILTIN, 30).getbbox("A")[3] > 10


def test_a_pack_prints_brand_and_type_on_its_face_and_records_where() -> None:
    rng = random.Random(0)
    for _ in range(30):
        product = sample_product(rng, "Kestrova")
        art = draw_pack(product, rng)
        assert (
            {"brand", "type"}
            <= set(art.text)
            <= {"brand", "type", "size", "count", "gender", "expiry"}
        )
        assert all(_inside(box, art.face) for box in art.text.values())
        assert ("count" in art.text) <= (product.count > 1)
        assert ("gender" in art.text) <= (product.gender is not None)
        assert nearest_colour(art.fill) == product.colour


def test_drawing_is_seeded() -> None:
    def draw(seed: int) -> bytes:
        rng = random.Random(seed)
        return photo(draw_pack(sample_product(rng, "Tavinor"), rng), rng).tobytes()

    assert draw(5) == draw(5)
    assert draw(5) != draw(6)


def test_photos_are_480_square_and_the_pack_colour_leads_the_dominant_colours() -> None:
    rng = random.Random(3)
    first = 0
    n = 40
    for _ in range(n):
        product = sample_product(rng, "Ostravi")
        img = photo(draw_pack(product, rng), rng)
        assert img.size == (SIZE, SIZE) and img.mode == "RGB"
        colours = dominant_colours(img)
        assert product.colour in colours
        first += colours[0] == product.colour
    assert first / n >= 0.75


def test_the_catalog_shot_is_square_on_and_differs_from_a_photo_of_the_same_product() -> None:
    rng = random.Random(4)
    product = sample_product(rng, "Sombrel")
    shot = catalog_shot(draw_pack(product, rng, catalog=True))
    again = photo(draw_pack(product, rng), rng)
    assert isinstance(shot, Image.Image) and shot.size == (SIZE, SIZE)
    assert shot.tobytes() != again.tobytes()
    corners = {shot.getpixel((1, 1)), shot.getpixel((SIZE - 2, SIZE - 2))}
    assert len(corners) == 1  # plain background
