from django.contrib.auth import get_user_model


def demo_user_ensure(*, username: str, password: str):
    """Create the demo user, or reset its password, so the printed one works."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.set_password(password)
    user.save(update_fields=["password"])
    return user
