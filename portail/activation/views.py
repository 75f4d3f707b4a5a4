from django.shortcuts import render


def activate(request):
    return render(request, "activation/activate.html")
