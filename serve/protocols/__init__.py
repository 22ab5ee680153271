"""The wire formats, each parsing its requests for the data plane and formatting its answers: TF Serving's REST API
(tfserving_v1.py), the Open Inference Protocol over HTTP (oip_v2.py, v2_binary.py, classification.py) and gRPC
(grpc/), its tensors (v2_tensors.py), image uploads (classify_upload.py, multipart_form.py), the page
(web_page.py), the OpenAPI document (openapi.py), and the HTTP routes that join them (routes.py, over
http_messages.py)."""
