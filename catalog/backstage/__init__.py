"""Backstage catalog descriptors (catalog-info.yaml): entity references, descriptors as entities, reading
locations. Written to the catalog by catalog/services/backstage.py."""
