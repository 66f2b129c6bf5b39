from schemas.events import ReviewEvent
from tests.streams.router.test_stages import _inbound, _outputs, _router


def test_follower_replay_loses_no_review() -> None:
    router, _, tables = _router(recent_reviews=5)
    r = [ReviewEvent(review_id=f"rv{i}", product_id="p1", text=f"t{i}") for i in (1, 2, 3)]
    first = _outputs(router.process([_inbound("reviews", r[0])])[0])[0]
    router.process([_inbound("reviews", r[1])])
    tables.reviews.put("p1", first.value)  # what the follower does with rv1's changelog record
    router.process([_inbound("reviews", r[2])])
    assert [x.review_id for x in tables.reviews_of("p1")] == ["rv1", "rv2", "rv3"]
