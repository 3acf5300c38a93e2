output "topic_arn" {
  description = "ARN of the alarm topic every alarm of the pipeline notifies."
  value       = aws_sns_topic.alarms.arn
}
