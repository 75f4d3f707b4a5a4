"""/ — the home page: who is logged in, and the tiles of their applications.

Here, with the applications, rather than in accounts: accounts stays below sso (ARCHITECTURE.md).
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .services import applications_for


@login_required
def home(request):
    return render(
        request,
        "accounts/home.html",
        {
            "structures": request.user.structures.all(),
            "classes": request.user.classes.all(),
            "applications": applications_for(request.user),
        },
    )
