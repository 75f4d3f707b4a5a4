"""Django admin for the operators (superusers): the référents work in /console instead."""

from django.contrib import admin

from .models import Function, Group, Relationship, SchoolClass, Structure


@admin.register(Structure)
class StructureAdmin(admin.ModelAdmin):
    list_display = ("uai", "name", "kind", "external_id")
    list_filter = ("kind",)
    search_fields = ("uai", "name", "external_id")


@admin.register(SchoolClass)
class SchoolClassAdmin(admin.ModelAdmin):
    list_display = ("name", "level", "structure")
    search_fields = ("name", "structure__uai", "structure__name")
    raw_id_fields = ("structure",)


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "structure")
    search_fields = ("name", "structure__uai")
    raw_id_fields = ("structure",)


@admin.register(Relationship)
class RelationshipAdmin(admin.ModelAdmin):
    list_display = ("parent", "child", "created_at")
    search_fields = ("parent__identifier", "child__identifier")
    raw_id_fields = ("parent", "child")


@admin.register(Function)
class FunctionAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "structure", "created_at")
    list_filter = ("role",)
    search_fields = ("user__identifier", "structure__uai")
    raw_id_fields = ("user", "structure")
