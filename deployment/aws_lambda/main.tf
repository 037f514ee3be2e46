# Model {{model_name}} version {{model_version}} as a container-image AWS Lambda behind an API
# Gateway HTTP API, assembled by executables/cloud_setup.sh aws_lambda. deploy.sh first applies the
# ECR repository alone, pushes the image built from the Dockerfile beside this file, then applies all:
#   terraform apply -var "region=$AWS_REGION" -var "image_tag={{image_tag}}"

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "region" {
  type        = string
  description = "AWS region (deploy.sh passes $AWS_REGION)"
}

variable "function_name" {
  type        = string
  default     = "{{service_name}}"
  description = "Name of the Lambda function, its ECR repository and its HTTP API"
}

variable "image_tag" {
  type        = string
  default     = "{{image_tag}}"
  description = "Tag of the image pushed to the repository (the model version)"
}

variable "memory_mb" {
  type    = number
  default = 1024
}

provider "aws" {
  region = var.region
}

resource "aws_ecr_repository" "model" {
  name                 = var.function_name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = true
}

resource "aws_iam_role" "lambda" {
  name = "${var.function_name}-lambda"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "logs" {
  role       = aws_iam_role.lambda.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

resource "aws_lambda_function" "predict" {
  function_name = var.function_name
  role          = aws_iam_role.lambda.arn
  package_type  = "Image"
  image_uri     = "${aws_ecr_repository.model.repository_url}:${var.image_tag}"
  memory_size   = var.memory_mb
  timeout       = 30
  architectures = ["x86_64"]
}

resource "aws_apigatewayv2_api" "http" {
  name          = var.function_name
  protocol_type = "HTTP"
  target        = aws_lambda_function.predict.arn
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.predict.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*/*"
}

output "repository_url" {
  value = aws_ecr_repository.model.repository_url
}

output "url" {
  description = "Base URL of the service: GET <url>/health, POST <url>/predict"
  value       = aws_apigatewayv2_api.http.api_endpoint
}
