"""Post hydration through the API: posts/s for a 30-post page vs a no-op endpoint, one run.

    python -m instagram.devstack exec -- python bench/post_hydration.py

Seeds (once) an author with 30 posts of processed images in the bench databases, starts
gunicorn (2 workers), then drives `GET /api/v1/users/{id}/posts?limit=30` and `GET /healthz`
(the no-op baseline on the same server) with the same closed-loop client.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import bench_environment, django_setup, gunicorn, load

POSTS = 30
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))


def seed() -> tuple[int, str]:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from accounts.models import User
    from accounts.services.auth import token_issue, user_counters_ensure
    from media.services.processing import media_process
    from media.services.upload import media_create_from_upload
    from posts.models import Post
    from posts.services.posts import post_create

    author = User.objects.filter(username="bench_author").first()
    if author is None:
        author = User.objects.create_user(username="bench_author", password=None)
        user_counters_ensure(user_id=author.id)
    existing = Post.objects.using(author.shard_alias()).filter(author_id=author.id).count()
    if existing < POSTS:
        for n in range(existing, POSTS):
            buffer = io.BytesIO()
            Image.new("RGB", (800, 600), (n * 8, 120, 200 - n * 5)).save(buffer, "JPEG")
            upload = SimpleUploadedFile("p.jpg", buffer.getvalue(), content_type="image/jpeg")
            media = media_create_from_upload(
                uploader_id=author.id, file=upload, kind="post", filter_id="normal"
            )
            media_process(media_id=media.id)
            post_create(author=author, media_ids=[media.id], caption=f"post {n} #bench")
    viewer = User.objects.filter(username="bench_viewer").first() or User.objects.create_user(
        username="bench_viewer", password=None
    )
    user_counters_ensure(user_id=viewer.id)
    return author.id, token_issue(user=viewer).token


def main() -> None:
    env = bench_environment()
    django_setup(env)
    author_id, token = seed()
    headers = {"Authorization": f"Bearer {token}"}
    with gunicorn(env) as port:
        path = f"/api/v1/users/{author_id}/posts?limit={POSTS}"
        load(port, path, headers=headers, seconds=2, clients=CLIENTS)  # warm-up
        load(port, "/healthz", headers=headers, seconds=2, clients=CLIENTS)
        page = load(port, path, headers=headers, seconds=SECONDS, clients=CLIENTS)
        noop = load(port, "/healthz", headers=headers, seconds=SECONDS, clients=CLIENTS)
    print(f"post hydration: {POSTS}-post page, gunicorn 2 workers, {CLIENTS} clients, "
          f"{SECONDS:.0f} s each")  # fmt: skip
    print(f"{'endpoint':<28}{'req/s':>10}{'posts/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for label, result, per in (
        ("users/{id}/posts?limit=30", page, POSTS),
        ("healthz (no-op)", noop, 0),
    ):
        posts = f"{result['rps'] * per:,.0f}" if per else "-"
        print(f"{label:<28}{result['rps']:>10,.0f}{posts:>10}{result['p50_ms']:>9.1f}"
              f"{result['p99_ms']:>9.1f}{result['errors']:>8}")  # fmt: skip
    print(f"page req/s as a share of no-op req/s: {page['rps'] / noop['rps']:.2f}")


if __name__ == "__main__":
    main()
